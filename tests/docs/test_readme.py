"""The README is short and every command in it works.

Each command of its fenced ``bash`` blocks is either run here (the cheap ones, on the session's fake
corpus instead of the demo's) or listed in :data:`COVERED_BY` with the test file that runs it for real
(``make demo`` is minutes: tests/pipeline runs it). A new command that is in neither fails the test.
Its Python example (the NDVI series) is run as written, on the fake corpus.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MAX_BYTES = 12_000
DEMO_CORPUS = "data/demo/default.zarr"
DEMO_TILE = "EPSG:32610_248_-2176"
#: Commands too slow for this test (minutes, a twin, a GPU node), each with the test that runs it.
COVERED_BY = {
    "make setup": "tests/test_standalone.py",
    "make demo": "tests/pipeline/test_demo.py",
    "make test": "tests/test_standalone.py",
    "make dataset CATALOG=twin": "tests/corpus/test_osm_corpus.py",
    # real Planetary Computer cannot be reached from CI: the command's preflight is what is tested
    "make dataset OSM=region.osm.pbf": "tests/cli/test_bad_inputs.py",
    "make pretrain": "tests/train/test_trainer.py",
    "make twin": "tests/twin/test_cli_serve.py",
    # need a trained release (runs/demo/release); run on a random Nano's release there
    ".venv/bin/olmoearth-model eval": "tests/evaluation/test_commands.py",
    ".venv/bin/olmoearth-model embed": "tests/evaluation/test_commands.py",
}


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", README.read_text(), flags=re.S)


def _commands() -> list[str]:
    """Every command line of the bash blocks, continuation lines joined, comments dropped."""
    out = []
    for block in _blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            command = line.split(" #")[0].strip()
            if command and not command.startswith("#"):
                out.append(" ".join(command.split()))
    return out


def _covered(command: str) -> str | None:
    return next((test for prefix, test in COVERED_BY.items() if command.startswith(prefix)), None)


def test_readme_is_short_and_its_links_resolve() -> None:
    assert README.stat().st_size <= MAX_BYTES, f"README is {README.stat().st_size} bytes"
    targets = {t.split("#")[0] for t in re.findall(r"\]\(([^)]+)\)", README.read_text())}
    missing = sorted(t for t in targets if "://" not in t and not (ROOT / t).exists())
    assert not missing, missing
    for test in COVERED_BY.values():
        assert (ROOT / test).is_file(), test


@pytest.fixture(scope="module")
def demo_like(fake_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A writable copy of the fake corpus (``index`` writes beside it) and its first complete tile."""
    import zarr

    copy = tmp_path_factory.mktemp("readme") / "default.zarr"
    shutil.copytree(fake_corpus, copy)
    group = zarr.open_group(str(copy), mode="r")
    return copy, str(group["tile_id"][int((group["status"][:] == 1).argmax())])


def test_every_readme_command_runs_or_is_covered(demo_like: tuple[Path, str], tmp_path: Path) -> None:
    corpus, _ = demo_like
    run_here = [c for c in _commands() if _covered(c) is None]
    assert run_here, "the README lists no cheap command"
    # Training on the fake corpus: small batches, one step, its own run folder; the README's
    # overrides (optim.lr=3e-4 …) are parsed and used as written.
    train_extra = [f"run_dir={tmp_path / 'run'}", "data.global_batch=2", "data.microbatch=2",
                   "schedule.max_steps=1", "schedule.warmup_steps=1", f"data.corpus={corpus}"]  # fmt: skip
    (tmp_path / "pipelines").symlink_to(ROOT / "pipelines")  # configs by their README path; outputs here
    failures = []
    for command in run_here:
        argv = shlex.split(command.replace(DEMO_CORPUS, str(corpus)))
        if not argv[0].startswith(".venv/bin/"):
            failures.append(f"{command}: not a .venv/bin command; run it here or add it to COVERED_BY")
            continue
        argv[0] = str(ROOT / argv[0])
        if argv[1:2] == ["train"]:
            argv += train_extra
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            failures.append(f"{command}: exit {done.returncode}: {done.stderr[-1500:]}")
    assert not failures, "\n".join(failures)


def test_the_ndvi_example_runs_as_written(demo_like: tuple[Path, str]) -> None:
    corpus, tile = demo_like
    (code,) = _blocks("python")
    assert len([line for line in code.splitlines() if line.strip()]) <= 4, "the NDVI example must fit 4 lines"
    code = code.replace(DEMO_CORPUS, str(corpus)).replace(DEMO_TILE, tile)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    series = [line.split() for line in done.stdout.splitlines() if re.match(r"^\d{4}-\d\d-\d\d", line)]
    assert len(series) == 12, done.stdout
    values = [float(v) for _, v in series]
    assert any(v == v for v in values) and all(v != v or -1 <= v <= 1 for v in values), values
