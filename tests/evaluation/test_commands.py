"""``olmoearth-model eval`` and ``embed`` as subprocesses, on a release of a random Nano."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
import zarr

from olmoearth_data.grid import Tile
from olmoearth_model.data.reader import CorpusReader
from olmoearth_model.evaluation.embed import sample_ids
from olmoearth_model.nn.latent_mim import LatentMIM
from olmoearth_model.nn.sizes import ModelConfig, get_size
from olmoearth_model.train.export import export_release

CLI = [sys.executable, "-m", "olmoearth_model.cli"]


@pytest.fixture(scope="module")
def release(fake_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    reader = CorpusReader(fake_corpus)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = LatentMIM(config=ModelConfig(size=get_size("nano"), modalities=reader.specs))
    return export_release(tmp_path_factory.mktemp("release"), model=model, norm_stats=reader.norm_stats())


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PATH": ""}
    )


def test_eval_prints_the_release_and_the_random_init_rows(fake_corpus, release, tmp_path):
    out = tmp_path / "eval.json"
    run = _run("eval", "--release", str(release), "--corpus", str(fake_corpus), "--tasks", "worldcover",
               "--score-split", "none", "--probe-steps", "50", "--timesteps", "2",
               "--inputs", "sentinel2_l2a", "--out", str(out))  # fmt: skip
    assert run.returncode == 0, run.stderr
    doc = json.loads(out.read_text())
    assert doc["settings"]["inputs"] == ["sentinel2_l2a"]  # Sentinel-1 left out of the encoder's input
    rows = doc["results"]
    assert len(rows) == 2 and any(name.startswith("random init") for name in rows)
    for name, scores in rows.items():
        assert 0 <= scores["probe/worldcover/miou"] <= 1
        assert name in run.stdout
    assert "probe/worldcover/miou" in run.stdout.splitlines()[0]


def test_embed_writes_a_georeferenced_store(fake_corpus, release, tmp_path):
    out = tmp_path / "emb.zarr"
    run = _run(
        "embed", "--release", str(release), "--corpus", str(fake_corpus), "--samples", "0", "--out", str(out)
    )
    assert run.returncode == 0, run.stderr
    sid = sample_ids(fake_corpus)[0]
    assert zarr.open_group(str(out), mode="r").attrs["samples"] == [sid]
    ds = xr.open_zarr(out, group=sid, decode_coords="all")  # CF grid mapping → the spatial_ref coordinate
    tile = Tile.from_id(ds.attrs["tile_id"])
    assert ds.rio.crs.to_epsg() == tile.epsg == int(zarr.open_group(str(fake_corpus))["epsg"][0])
    assert ds["embedding"].dims == ("dim", "y", "x") and ds["embedding"].shape == (128, 32, 32)
    xmin, ymin, xmax, ymax = tile.bounds
    assert ds.rio.bounds() == pytest.approx((xmin, ymin, xmax, ymax))
    assert ds.rio.resolution() == pytest.approx((80.0, -80.0))
    values = ds["embedding"].values
    assert np.isfinite(values).any()
    assert ds["period_start"].size == 4 and set(ds.attrs["modalities"]) == {"sentinel2_l2a", "sentinel1"}


def test_errors_are_one_line_and_write_nothing(fake_corpus, release, tmp_path):
    out = tmp_path / "emb.zarr"
    run = _run("embed", "--release", str(release), "--corpus", str(fake_corpus), "--samples", "EPSG:1_2_3",
               "--out", str(out))  # fmt: skip
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert "no sample 'EPSG:1_2_3'" in run.stderr
    assert not out.exists() and not list(tmp_path.iterdir())
    run = _run("eval", "--release", str(release), "--corpus", str(fake_corpus), "--score-split", "none",
               "--inputs", "landsat_l2")  # fmt: skip
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1
    assert "['landsat_l2'] are not observation modalities" in run.stderr and "sentinel1" in run.stderr
    run = _run("eval", "--release", str(tmp_path / "none"), "--corpus", str(fake_corpus))
    assert (
        run.returncode == 2 and "does not exist" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    )
