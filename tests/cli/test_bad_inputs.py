"""Every careless input of issue 16, fed to the real command lines as subprocesses.

Each must end with exit status 2 and one line on stderr naming the problem, and must write nothing:
neither in the working folder nor in the corpus or the output paths it was given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: How each program is started: the three console scripts' modules, and `make dataset`'s script.
MODULES = {
    "olmoearth-data": ["-m", "olmoearth_data.cli"],
    "olmoearth-model": ["-m", "olmoearth_model.cli"],
    "olmoearth-twin": ["-m", "olmoearth_twin.cli"],
    "make dataset": [str(ROOT / "scripts" / "dataset.py")],
}


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folders`` with its size and mtime: any write shows as a difference."""
    out = {}
    for folder in folders:
        for p in folder.rglob("*"):
            st = p.stat()
            out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def inputs(fake_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A read-only folder of valid inputs: the fake corpus, a sample table, lon/lat points, a config."""
    from olmoearth_data.samples import write_sample_table
    from olmoearth_data.testing import fake_samples

    folder = tmp_path_factory.mktemp("cli-inputs")
    write_sample_table(folder / "samples.parquet", samples=fake_samples(n_samples=2, seed=0))
    (folder / "lonlats.json").write_text("[[-122.3, 37.807], [2.35, 48.85]]")
    (folder / "train.yaml").write_text(
        f"extends: {ROOT / 'pipelines' / 'demo.yaml'}\n"
        f"run_dir: {folder / 'run'}\ndata:\n  corpus: {fake_corpus}\n"
    )
    return {"corpus": fake_corpus, "folder": folder}


def _cases(i: dict[str, Path], port: int) -> list[tuple[list[str], str]]:
    """(command line, a word the error line must contain)."""
    corpus, folder = str(i["corpus"]), i["folder"]
    samples, lonlats, config = (
        str(folder / "samples.parquet"),
        str(folder / "lonlats.json"),
        str(folder / "train.yaml"),
    )
    return [
        (["olmoearth-data", "quicklook", corpus, "--sample", "99999", "--out", "q.png"], "out of range"),
        (["olmoearth-data", "quicklook", corpus, "--sample", "-1", "--out", "q.png"], "out of range"),
        (["olmoearth-data", "quicklook", "missing.zarr"], "does not exist"),
        (["olmoearth-data", "tile", "--id", "EPSG:4326_1_1"], "EPSG:4326"),
        (["olmoearth-data", "tile", "--lon", "200", "--lat", "0"], "out of range"),
        (["olmoearth-data", "tile"], "--id"),
        (["olmoearth-data", "modalities", "--set", "nope"], "unknown modality set"),
        (
            ["olmoearth-data", "sample", "--lonlats", lonlats, "--out", "s.parquet", "--per-category", "-5"],
            "--per-category",
        ),
        (
            ["olmoearth-data", "sample", "--lonlats", lonlats, "--out", "s.parquet", "--dates-per-tile", "9"],
            "--dates-per-tile",
        ),
        (["olmoearth-data", "sample", "--osm", "missing.osm.pbf", "--out", "s.parquet"], "does not exist"),
        (["olmoearth-data", "sample", "--overpass-bbox=1,2,3", "--out", "s.parquet"], "W,S,E,N"),
        (
            [
                "olmoearth-data",
                "build",
                "--samples",
                samples,
                "--corpus",
                "c.zarr",
                "--no-sign",
                "--stac-url",
                f"http://127.0.0.1:{port}/api/stac/v1",
            ],
            "unreachable",
        ),
        (["olmoearth-data", "build", "--samples", samples, "--corpus", "c.zarr"], "PC_SDK_SUBSCRIPTION_KEY"),
        (["olmoearth-data", "build", "--samples", "missing.csv", "--corpus", "c.zarr"], "does not exist"),
        (
            ["olmoearth-data", "build", "--samples", samples, "--corpus", "c.zarr", "--workers", "0"],
            "--workers",
        ),
        (
            ["olmoearth-data", "build", "--samples", samples, "--corpus", "c.zarr", "--modalities", "foo"],
            "unknown modality set",
        ),
        (["olmoearth-data", "build", "--samples", samples, "--corpus", f"{samples}/c.zarr"], "not a folder"),
        (["olmoearth-data", "nonsense"], "invalid choice"),
        (["olmoearth-data", "build"], "required"),
        (["olmoearth-model", "describe", "--size", "nano", "--modalities", "foo"], "unknown modality set"),
        (["olmoearth-model", "describe", "--size", "nanoo"], "invalid choice"),
        (["olmoearth-model", "describe", "--size", "nano", "--crop", "0"], "--crop"),
        (["olmoearth-model", "train", "--config", config, "size=nanoo"], "size"),
        (["olmoearth-model", "train", "--config", config, "model.size=nanoo"], "nanoo"),
        (["olmoearth-model", "train", "--config", "missing.yaml"], "missing.yaml"),
        (["olmoearth-model", "plot", "missing-run"], "does not exist"),
        (["olmoearth-twin", "generate", "--tiles", "99", "--root", "twin"], "--tiles"),
        (["olmoearth-twin", "generate", "--tiles", "0", "--root", "twin"], "--tiles"),
        (["olmoearth-twin", "generate", "--samples", "missing.csv", "--root", "twin"], "missing.csv"),
        (["olmoearth-twin", "serve", "--collections", "s3"], "invalid choice"),
        # `make dataset OSM=…` on Planetary Computer: the key is checked before the OSM pass
        (["make dataset", "--osm", lonlats, "--data", "ds"], "PC_SDK_SUBSCRIPTION_KEY"),
        (["make dataset", "--osm", "missing.osm.pbf", "--data", "ds"], "does not exist"),
        (
            [
                "make dataset",
                "--osm",
                lonlats,
                "--data",
                "ds",
                "--catalog",
                "twin",
                "--samples-per-category",
                "0",
            ],
            "--samples-per-category",
        ),
    ]


def test_every_bad_input_is_one_line_exit_2_and_writes_nothing(
    inputs: dict[str, Path], tmp_path: Path
) -> None:
    port = _closed_port()
    env = {k: v for k, v in os.environ.items() if k != "PC_SDK_SUBSCRIPTION_KEY"}
    watched = (tmp_path, inputs["folder"], inputs["corpus"])
    before = _snapshot(*watched)
    failures = []
    for argv, word in _cases(inputs, port):
        cmd = [sys.executable, *MODULES[argv[0]], *argv[1:]]
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        lines = done.stderr.strip().splitlines()
        ok = (
            done.returncode == 2
            and len(lines) == 1
            and lines[0].startswith(f"{argv[0]}")
            and ": error: " in lines[0]
            and word in lines[0]
        )
        if not ok:
            failures.append(f"{' '.join(argv)}\n  rc={done.returncode} stderr={done.stderr[-1500:]!r}")
    assert not failures, "\n".join(failures)
    assert _snapshot(*watched) == before, "a refused command wrote something"


def test_demo_options_never_clobber_a_finished_demo(fake_corpus: Path, tmp_path: Path) -> None:
    """``make demo DEMO_ARGS="--tiles 4"`` after a default demo: its own folders, or a refusal that
    writes nothing when pointed at the finished demo's folder."""
    import importlib.util

    root = ROOT
    spec = importlib.util.spec_from_file_location("demo_script", root / "scripts" / "demo.py")
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    defaults = {"tiles": demo.MAX_TILES, "seed": 0, "steps": None, "config": "pipelines/demo.yaml",
                "overrides": [], "data": None, "run": None}  # fmt: skip
    folders = {
        key: demo.option_folders(argparse.Namespace(**{**defaults, **change}))
        for key, change in {
            "default": {},
            "tiles": {"tiles": 4},
            "steps": {"steps": 100},
            "lr": {"overrides": ["optim.lr=3e-4"]},
        }.items()
    }
    assert folders["default"] == (Path("data/demo"), Path("runs/demo"))
    assert len({data for data, _ in folders.values()}) == 2 and len({run for _, run in folders.values()}) == 4

    finished = tmp_path / "demo"
    shutil.copytree(fake_corpus, finished / "default.zarr")  # a finished demo of other samples
    (finished / "samples.parquet").write_bytes(b"the finished demo's table")
    before = _snapshot(tmp_path)
    cmd = [sys.executable, str(root / "scripts" / "demo.py"), "--tiles", "4", "--data", str(finished),
           "--run", str(tmp_path / "run")]  # fmt: skip
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=120)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "make demo: error:" in lines[0], done.stderr[-2000:]
    assert "holds a demo of 7 samples" in lines[0]
    assert _snapshot(tmp_path) == before
