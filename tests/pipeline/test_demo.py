"""`make demo`'s path, end to end, as a real subprocess (small: 2 tiles, a few steps): a corpus of the
whole ``default`` modality set from the full twin (British Columbia + West Oakland, the OSM raster from
the West Oakland fixture), then Nano trained on every modality."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pytest
import zarr

from olmoearth_data.index import index_path
from olmoearth_data.modalities import modality_set

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.twin, pytest.mark.slow]


def test_demo_script_runs_offline_end_to_end(tmp_path: Path) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    cmd = [
        sys.executable,
        "scripts/demo.py",
        "--tiles",
        "2",
        "--steps",
        "12",
        "--data",
        str(data),
        "--run",
        str(run),
        "data.global_batch=2",
        "data.microbatch=2",
        "metrics.probe_every=4",
    ]
    out = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for path in (
        data / "default.zarr",
        run / "metrics.jsonl",
        run / "model.pt",
        run / "loss.png",
        run / "quicklook.png",
    ):
        assert path.exists(), path
        assert str(path) in out.stdout or path.suffix in (".jsonl", ".pt")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(12))
    assert "probe-batch loss" in out.stdout
    assert "INFO distributed" not in out.stdout + out.stderr

    # every modality of the default set is in the corpus and has data in at least one of the 2 samples
    # (CDL and the OSM raster in West Oakland, canopy height and WorldCereal via the twin's tile indexes)
    default = [s.name for s in modality_set("default")]
    group = zarr.open_group(str(data / "default.zarr"), mode="r")
    assert set(default) <= {name for name, _ in group.groups()}
    index = gpd.read_parquet(index_path(data / "default.zarr"))
    assert list(index["status"]) == [1, 1]
    with_data = {m: int((index[f"{m}:present"] > 0).sum()) for m in default}
    assert all(n >= 1 for n in with_data.values()), with_data
    assert "samples with data: " + ", ".join(f"{m} {n}/2" for m, n in with_data.items()) in out.stdout
    # the model was built over, and normalised, every modality of the corpus (its release export says so)
    release = json.loads((run / "release" / "config.json").read_text())
    assert list(release["band_order"]) == list(release["norm_stats"]) == default
