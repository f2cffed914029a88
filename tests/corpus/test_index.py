"""The sample index (GeoParquet beside the store) agrees with the cube and carries the build's item ids."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import zarr

from olmoearth_data.grid import Tile
from olmoearth_data.index import fragments_dir, index_path

pytestmark = [pytest.mark.twin]


def test_build_writes_an_index_that_agrees_with_the_arrays(s2_corpus: Path) -> None:
    path = index_path(s2_corpus)
    assert path.name == "s2.index.parquet" and path.exists()
    assert sorted(p.name for p in fragments_dir(s2_corpus).iterdir()) == [
        "shard-00000.parquet",
        "shard-00001.parquet",
    ]
    gdf = gpd.read_parquet(path)
    group = zarr.open_group(str(s2_corpus), mode="r")
    assert gdf.crs.to_epsg() == 4326
    assert list(gdf["sample"]) == list(range(group["status"].shape[0]))
    np.testing.assert_array_equal(gdf["status"].to_numpy(), group["status"][:])
    present = group["sentinel2_l2a/present"][:]
    np.testing.assert_array_equal(gdf["sentinel2_l2a:present"].to_numpy(), present.sum(axis=1))
    reasons = np.array([list(r) for r in gdf["sentinel2_l2a:reason"]])
    np.testing.assert_array_equal(reasons, group["sentinel2_l2a/reason"][:])
    for i, row in gdf.iterrows():
        tile = Tile.from_id(row["tile_id"])
        assert row.geometry.equals_exact(tile.polygon_lonlat(), 1e-9)
        assert row["start_datetime"] < row["datetime"] < row["end_datetime"]
        assert str(row["start_datetime"].tz) == "UTC"
        ids = [list(p) for p in row["sentinel2_l2a:item_ids"]]
        assert len(ids) == 12
        # a period is present exactly when items contributed to it
        assert [bool(p) for p in ids] == list(present[i])
        assert all(item.startswith("S2") for p in ids for item in p)


def test_index_command_rebuilds_the_same_index(s2_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "again.parquet"
    cmd = [sys.executable, "-m", "olmoearth_data.cli", "index", str(s2_corpus), "--out", str(out)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    pd.testing.assert_frame_equal(
        pd.DataFrame(gpd.read_parquet(out).drop(columns="geometry")),
        pd.DataFrame(gpd.read_parquet(index_path(s2_corpus)).drop(columns="geometry")),
    )
