"""``olmoearth-data materialise TILE_ID …`` run as a subprocess against the twin: files on the tile grid.

Grid expectations come from the tile id (EPSG code, 2560 m tile bounds); the canopy-height pixels are
compared with the direct read of the twin's files (:func:`test_tile_index_twin._expected_canopy`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from materialise_helpers import BC
from test_tile_index_twin import _expected_canopy, twin_refs

from olmoearth_twin import Catalog, Twin

pytestmark = pytest.mark.twin

CLI = [sys.executable, "-m", "olmoearth_data.cli", "materialise"]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def cli_out(twin: Twin, twin_collections: Catalog, twin_maps: Catalog, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli-out")
    env = {**os.environ, "PC_SDK_SUBSCRIPTION_KEY": "twin-test-key"}
    refs = twin_refs(twin, twin_maps)
    args = [BC.tile.id, "--date", BC.centre.isoformat(), "--out", str(out), "--stac-url", twin.stac_url,
            "--blob-endpoint", twin.assets_url, "--modalities", "sentinel1,worldcover,wri_canopy_height_map",
            "--retries", "3", "--backoff-s", "0.01"]  # fmt: skip
    for name, ref in refs.items():
        args += ["--tile-index", name, ref.url, ref.base]
    done = _run(args, env)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def test_cli_writes_one_geotiff_per_bandset_on_the_tile_grid(cli_out: Path) -> None:
    x0, y0, x1, y1 = BC.tile.bounds
    expected = {"sentinel1__10m.tif": 12 * 2, "worldcover__10m.tif": 1, "wri_canopy_height_map__10m.tif": 1}
    assert {p.name for p in cli_out.glob("*.tif")} == set(expected)
    for name, count in expected.items():
        with rasterio.open(cli_out / name) as ds:
            assert ds.crs.to_epsg() == BC.tile.epsg
            assert ds.count == count and ds.shape == (256, 256)
            assert tuple(ds.bounds) == pytest.approx((x0, y0, x1, y1))
            assert ds.transform.a == 10.0 and ds.transform.e == -10.0
    with rasterio.open(cli_out / "sentinel1__10m.tif") as ds:
        assert ds.descriptions[0].startswith("vv@") and ds.descriptions[1].startswith("vh@")
        assert np.isnan(ds.nodata)


def test_cli_canopy_height_equals_direct_read(cli_out: Path, twin_maps: Catalog) -> None:
    with rasterio.open(cli_out / "wri_canopy_height_map__10m.tif") as ds:
        assert ds.nodata == 255
        np.testing.assert_array_equal(ds.read(1), _expected_canopy(twin_maps, BC))


def test_cli_status_json(cli_out: Path) -> None:
    status = json.loads((cli_out / "status.json").read_text())
    assert status["tile_id"] == BC.tile.id and status["status"] == "COMPLETE"
    assert status["modalities"]["wri_canopy_height_map"]["reason"] == ["PRESENT"]
    assert len(status["modalities"]["sentinel1"]["present"]) == 12


def test_cli_bad_arguments_fail_clearly(tmp_path: Path) -> None:
    done = _run(["not-a-tile", "--date", "2022-06-01", "--out", str(tmp_path)], dict(os.environ))
    assert done.returncode == 2 and "not a tile id" in done.stderr
