"""The analyst view: a sample's bandset as a georeferenced DataArray."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from affine import Affine

from olmoearth_data.analysis import open_corpus, sample_bandset
from olmoearth_data.grid import Tile

pytestmark = [pytest.mark.twin]


@pytest.mark.parametrize(("bandset", "px"), [("10m", 10.0), ("20m", 20.0), ("40m", 40.0)])
def test_sample_bandset_is_georeferenced_and_equals_the_store(
    s2_corpus: Path, bandset: str, px: float
) -> None:
    tree = open_corpus(s2_corpus)
    group = zarr.open_group(str(s2_corpus), mode="r")
    for sample in range(group["status"].shape[0]):
        da = sample_bandset(tree, sample=sample, modality="sentinel2_l2a", bandset=bandset)
        tile = Tile.from_id(str(group["tile_id"][sample]))
        xmin, _ymin, _xmax, ymax = tile.bounds
        assert da.dims == ("period", "band", "y", "x")
        assert da.rio.crs.to_epsg() == tile.epsg
        assert da.rio.transform() == Affine(px, 0.0, xmin, 0.0, -px, ymax)
        assert da.rio.nodata == 0
        assert np.issubdtype(da["period"].dtype, np.datetime64)
        assert da["period"].values[0] == np.datetime64(int(group["period_start"][sample, 0]), "D").astype(
            da["period"].dtype
        )
        np.testing.assert_array_equal(da.values, group[f"sentinel2_l2a/{bandset}/data"][sample])
        assert list(da["band"].values) == list(group[f"sentinel2_l2a/{bandset}"]["data"].attrs["bands"])


def test_sample_bandset_reprojects(s2_corpus: Path) -> None:
    da = sample_bandset(s2_corpus, sample=0, modality="sentinel2_l2a", bandset="20m").isel(period=0)
    lonlat = da.rio.reproject("EPSG:4326")
    assert lonlat.rio.crs.to_epsg() == 4326
    lon, lat = Tile.from_id(str(da["tile_id"].values)).centre_lonlat
    west, south, east, north = lonlat.rio.bounds()
    assert west < lon < east and south < lat < north
    with pytest.raises(KeyError, match="no bandset"):
        sample_bandset(s2_corpus, sample=0, modality="sentinel2_l2a", bandset="5m")
