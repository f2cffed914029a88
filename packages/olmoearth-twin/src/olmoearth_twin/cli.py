"""``olmoearth-twin``: generate the twin's catalogue and serve it in the foreground.

olmoearth-twin serve [--collections default|s2|all] [--tiles N | --samples TABLE] [--seed 0] [--root DIR]
olmoearth-twin generate [same options]

By default the twin serves every source the ``default`` modality set reads — the STAC collections
sentinel-2-l2a, sentinel-1-rtc, landsat-c2-l2, esa-worldcover, nasadem, cop-dem-glo-30 and usda-cdl,
and the WRI canopy-height and WorldCereal tile indexes — for the demo's eight samples, from the same
cache as ``make demo`` (``build/twin/cache``: ~1 minute cold, ~0 s warm). ``--collections s2`` serves
Sentinel-2 only; ``all`` adds NAIP. ``--tiles N`` takes the first N rows of the twin's default table
(the OSM fixtures' places are rows 9-14) and ``--samples`` any sample table (Parquet or CSV with
``tile_id`` and ``centre_date``, as ``olmoearth-data sample`` writes).

Errors a person can fix print as one line, ``olmoearth-twin: error: …``, exit 2, before anything is
generated (:mod:`olmoearth_data.cli_errors`); imports are lazy so that ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from olmoearth_data.cli_errors import CliParser, run_command
from olmoearth_data.preflight import require_input, require_range, require_writable

if TYPE_CHECKING:
    from olmoearth_data.samples import Sample
    from olmoearth_twin.catalog.store import Catalog

PROG = "olmoearth-twin"
COLLECTION_CHOICES = ("default", "s2", "all")
#: len(olmoearth_twin.catalog.samples.DEFAULT_SAMPLES) and olmoearth_twin.servers.twin.DEFAULT_ROOT,
#: written out so that --help imports neither (pyproj, ~1 s); tests/cli checks they agree.
N_DEFAULT_SAMPLES = 14
DEFAULT_ROOT = Path("build/twin")


def _samples(args: argparse.Namespace) -> tuple[Sample, ...]:
    """The samples to generate for, checked (with the output folders) before any work."""
    require_writable(path=args.root, what="--root")
    if args.cache_dir:
        require_writable(path=args.cache_dir, what="--cache-dir")
    if args.tiles is not None:
        require_range(name="--tiles", value=args.tiles, low=1, high=N_DEFAULT_SAMPLES)
    if args.samples:
        from olmoearth_data.samples import read_sample_table
        from olmoearth_twin.full import twin_samples

        require_input(path=args.samples, what="sample table", hint="create one with `olmoearth-data sample`")
        return twin_samples(read_sample_table(args.samples))
    from olmoearth_twin.catalog.samples import DEMO_SAMPLES, default_samples

    return default_samples(n_tiles=args.tiles) if args.tiles is not None else DEMO_SAMPLES


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _generate(args: argparse.Namespace, *, samples: tuple[Sample, ...]) -> list[Catalog]:
    from olmoearth_twin.catalog.naip import generate_naip
    from olmoearth_twin.catalog.sentinel2 import generate_sentinel2
    from olmoearth_twin.full import generate_full

    cache = Path(args.cache_dir) if args.cache_dir else Path(args.root) / "cache"
    print(f"generating (or reusing) the catalogues for {len(samples)} samples under {cache}", flush=True)

    def say(line: str) -> None:
        print(f"  {line}", flush=True)

    builders: list[tuple[str, Callable[[], list[Catalog]]]] = []
    if args.collections == "s2":
        builders.append(
            ("sentinel-2-l2a", lambda: [generate_sentinel2(samples=samples, seed=args.seed, cache_dir=cache)])
        )
    else:
        builders.append(
            (
                "default-set sources",
                lambda: generate_full(samples=samples, seed=args.seed, cache_dir=cache, log=say).all(),
            )
        )
    if args.collections == "all":
        builders.append(("naip", lambda: [generate_naip(samples=samples, seed=args.seed, cache_dir=cache)]))
    catalogs: list[Catalog] = []
    for name, build in builders:
        t0 = time.perf_counter()
        for catalog in build():
            n_items = len(catalog.items_path.read_text().splitlines())
            print(f"  {catalog.root} ({n_items} items, {_size_mb(catalog.root):.0f} MB)", flush=True)
            catalogs.append(catalog)
        print(f"{name}: ready in {time.perf_counter() - t0:.1f} s", flush=True)
    return catalogs


def _serve(args: argparse.Namespace, *, samples: tuple[Sample, ...]) -> int:
    from olmoearth_twin.servers.twin import Twin

    catalogs = _generate(args, samples=samples)
    stop = threading.Event()
    # SIGTERM (e.g. from a process manager) should shut down as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Twin(root=Path(args.root), catalog=catalogs) as twin:
        print(f"\nPlanetary Computer twin ready in {twin.startup_s:.1f} s", flush=True)
        print(f"  STAC API : {twin.stac_url}")
        print(f"  SAS API  : {twin.sas_url}")
        print(f"  blobs    : {twin.assets_url}")
        for catalog in catalogs:
            print(f"  manifest : {catalog.manifest_path}")
            for name in catalog.manifest().get("tile_indexes", {}):
                print(f"  index    : {twin.tile_index_url(name)}")
        print("\nIn another shell:")
        for key, value in twin.env.items():
            print(f"  export {key}={value}")
        print("\nCtrl-C to stop.", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        print("stopping the twin...", flush=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = CliParser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in (
        ("serve", "generate (cached) and serve the twin until Ctrl-C"),
        ("generate", "only generate the catalogue (cached) and print its folder"),
    ):
        p = sub.add_parser(name, help=help_text)
        which = p.add_mutually_exclusive_group()
        which.add_argument(
            "--tiles",
            type=int,
            default=None,
            help=f"first N rows of the twin's default sample table (1-{N_DEFAULT_SAMPLES}) "
            "instead of the demo's samples",
        )
        which.add_argument("--samples", help="sample table instead (Parquet or CSV: tile_id, centre_date)")
        p.add_argument("--seed", type=int, default=0, help="catalogue generator seed")
        p.add_argument("--root", default=str(DEFAULT_ROOT), help="working folder (cluster, logs, cache/)")
        p.add_argument("--cache-dir", default=None, help="catalogue cache folder (default: ROOT/cache)")
        p.add_argument(
            "--collections",
            choices=COLLECTION_CHOICES,
            default="default",
            help="default: every source the default modality set reads; s2: Sentinel-2 only; all: + NAIP",
        )
    return parser


def _run(args: argparse.Namespace) -> int:
    samples = _samples(args)
    if args.command == "generate":
        _generate(args, samples=samples)
        return 0
    return _serve(args, samples=samples)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``olmoearth-twin`` console script."""
    args = _parser().parse_args(argv)
    return run_command(PROG, lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
