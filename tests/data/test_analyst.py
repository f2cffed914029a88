"""The analyst cube (olmoearth_data.analyst) on the session's fake corpus: lazy, georeferenced, masked
on request, presence and reasons attached; and plain xarray finds the same coordinates in the store."""

from __future__ import annotations

from pathlib import Path

import dask.array
import numpy as np
import pytest
import xarray as xr
import zarr
from affine import Affine

from olmoearth_data.analyst import list_samples, open_corpus
from olmoearth_data.grid import Tile


def test_a_sample_by_tile_id_is_a_lazy_georeferenced_time_cube(fake_corpus: Path) -> None:
    group = zarr.open_group(str(fake_corpus), mode="r")
    samples = list_samples(fake_corpus)
    assert list(samples["tile_id"]) == [str(t) for t in group["tile_id"][:]]
    row = int(samples.index[samples["status"] == "complete"][0])
    tile = Tile.from_id(samples["tile_id"][row])
    s2 = open_corpus(fake_corpus, tile_id=tile.id)
    assert s2.dims == ("time", "band", "y", "x") and isinstance(s2.data, dask.array.Array)
    assert s2.rio.crs.to_epsg() == tile.epsg
    xmin, _, _, ymax = tile.bounds
    assert s2.rio.transform() == Affine(10.0, 0.0, xmin, 0.0, -10.0, ymax)
    assert s2.attrs["scale_factor"] == 1e-4 and s2.rio.nodata == 0
    starts = group["period_start"][row].astype("datetime64[D]")
    np.testing.assert_array_equal(s2["time"].values.astype("datetime64[D]"), starts)
    np.testing.assert_array_equal(s2["present"].values, group["sentinel2_l2a/present"][row])
    reasons = group["sentinel2_l2a/reason"][row]
    assert [r == "present" for r in s2["missing_reason"].values] == list(reasons == 0)
    np.testing.assert_array_equal(s2.values, group["sentinel2_l2a/10m/data"][row])
    # The same sample found by a point inside its tile.
    lon, lat = tile.centre_lonlat
    assert open_corpus(fake_corpus, lon=lon, lat=lat)["tile_id"].item() == tile.id


def test_mask_nodata_gives_nan_for_nodata_pixels_and_absent_periods(fake_corpus: Path) -> None:
    group = zarr.open_group(str(fake_corpus), mode="r")
    row = int(np.flatnonzero(~group["sentinel2_l2a/present"][:].all(axis=1))[0])
    s2 = open_corpus(fake_corpus, sample=row, mask_nodata=True).compute()
    stored = group["sentinel2_l2a/10m/data"][row]
    present = group["sentinel2_l2a/present"][row]
    valid = (stored != 0).any(axis=1) & present[:, None, None]
    assert s2.dtype == np.float32 and np.isnan(s2.rio.nodata)
    np.testing.assert_array_equal(np.isnan(s2.values).all(axis=1), ~valid)
    # [time, y, x, band] at the valid pixels: the stored values, as float
    np.testing.assert_array_equal(np.moveaxis(s2.values, 1, -1)[valid], np.moveaxis(stored, 1, -1)[valid])
    assert np.isnan(s2.values[~present]).all() and valid.any()


def test_static_modalities_and_refusals(fake_corpus: Path) -> None:
    wc = open_corpus(fake_corpus, modality="worldcover", sample=0)
    assert wc.dims == ("band", "y", "x") and wc["present"].dims == ()
    with pytest.raises(KeyError, match="no modality"):
        open_corpus(fake_corpus, modality="cdl", sample=0)
    with pytest.raises(KeyError, match="no bandset"):
        open_corpus(fake_corpus, bandset="5m", sample=0)
    with pytest.raises(KeyError, match="no sample of tile"):
        open_corpus(fake_corpus, tile_id="EPSG:32610_1_1")
    with pytest.raises(IndexError, match="out of range"):
        open_corpus(fake_corpus, sample=-1)
    with pytest.raises(ValueError, match="name one sample"):
        open_corpus(fake_corpus)


def test_plain_xarray_finds_map_coordinates_and_crs(fake_corpus: Path) -> None:
    """No olmoearth code: ``xr.open_datatree`` alone georeferences a sample (CF easting/northing)."""
    tree = xr.open_datatree(str(fake_corpus), engine="zarr")
    for row in range(2):
        plain = tree["sentinel2_l2a/20m"].dataset["data"].isel(sample=row)
        plain = plain.assign_coords(x=plain["easting"], y=plain["northing"]).rio.write_crs(
            str(plain["spatial_ref"].values)
        )
        ours = open_corpus(fake_corpus, sample=row, bandset="20m")
        assert plain["easting"].attrs["standard_name"] == "projection_x_coordinate"
        assert plain.rio.crs == ours.rio.crs and plain.rio.transform() == ours.rio.transform()
