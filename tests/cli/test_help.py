"""``--help`` of the three command lines: every option explained with its default, and instant (the
parsers import neither torch nor the geo stack)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

#: How each CLI builds its parser. ``olmoearth-data`` registers ``materialise`` (rasterio, pystac) only
#: when that is the command: its own ``--help`` is the one allowed to import them.
PARSERS = {
    "olmoearth-data": "olmoearth_data.cli:build_parser(materialise=False)",
    "olmoearth-model": "olmoearth_model.cli:_parser()",
    "olmoearth-twin": "olmoearth_twin.cli:_parser()",
}
HEAVY = ("torch", "pyproj", "pandas", "rasterio", "xarray", "zarr", "matplotlib")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_help_imports_nothing_heavy(prog: str) -> None:
    module, func = PARSERS[prog].split(":")
    code = (
        f"import sys, {module} as m\n"
        f"p = m.{func}\n"
        "for name in [None, *[a for a in p._subparsers._group_actions[0].choices if a != 'materialise']]:\n"
        "    try:\n"
        "        p.parse_args([name, '--help'] if name else ['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout[-500:]


@pytest.mark.parametrize("prog", sorted(PARSERS))
def test_every_option_has_help(prog: str) -> None:
    import importlib

    module, func = PARSERS[prog].split(":")
    parser = getattr(importlib.import_module(module), func.split("(")[0])()  # materialise included
    missing = [
        f"{name} {'/'.join(action.option_strings) or action.dest}"
        for name, sub in _subparsers(parser).items()
        for action in sub._actions
        if not action.help
    ]
    assert not missing, missing


def test_constants_written_out_for_speed_agree_with_their_sources() -> None:
    from olmoearth_data import cli as data_cli
    from olmoearth_data.sources import PLANETARY_COMPUTER_STAC_URL
    from olmoearth_model import cli as model_cli
    from olmoearth_model.nn.sizes import SIZES
    from olmoearth_twin import cli as twin_cli
    from olmoearth_twin.catalog.samples import DEFAULT_SAMPLES
    from olmoearth_twin.servers.twin import DEFAULT_ROOT

    assert data_cli.PLANETARY_COMPUTER_STAC_URL == PLANETARY_COMPUTER_STAC_URL
    assert sorted(model_cli.SIZE_NAMES) == sorted(SIZES)
    assert len(DEFAULT_SAMPLES) == twin_cli.N_DEFAULT_SAMPLES
    assert twin_cli.DEFAULT_ROOT == DEFAULT_ROOT
