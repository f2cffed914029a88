"""``olmoearth-data materialise TILE_ID …`` against the twin: files on the tile grid.

GeoTIFFs come from a subprocess run; NetCDF (``--format netcdf``, reopened with xarray and GDAL) from the
same command run in this process and is compared with them. Grid expectations come from the tile id
(EPSG code, 2560 m tile bounds); the canopy-height pixels are compared with the direct read of the
twin's files (:func:`test_tile_index_twin._expected_canopy`). Also the ``build`` options that point a
build at other tile indexes and at an OSM extraction.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

from olmoearth_data.cli import main
from olmoearth_twin import Catalog, Twin

from .materialise_helpers import BC, subscription_key
from .test_tile_index_twin import _expected_canopy, twin_refs

pytestmark = pytest.mark.twin

CLI = [sys.executable, "-m", "olmoearth_data.cli", "materialise"]


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=300)


MODALITIES = "sentinel1,worldcover,wri_canopy_height_map"


def _args(twin: Twin, maps: Catalog, out: Path) -> list[str]:
    args = [BC.tile.id, "--date", BC.centre.isoformat(), "--out", str(out), "--stac-url", twin.stac_url,
            "--blob-endpoint", twin.assets_url, "--modalities", MODALITIES, "--retries", "3",
            "--backoff-s", "0.01"]  # fmt: skip
    for name, ref in twin_refs(twin, maps).items():
        args += ["--tile-index", f"{name}={ref.url}@{ref.base}"]
    return args


@pytest.fixture(scope="module")
def cli_out(twin: Twin, twin_collections: Catalog, twin_maps: Catalog, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli-out")
    env = {**os.environ, "PC_SDK_SUBSCRIPTION_KEY": "twin-test-key"}
    done = _run(_args(twin, twin_maps, out), env)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def nc_out(twin: Twin, twin_collections: Catalog, twin_maps: Catalog, tmp_path_factory) -> Path:
    """The same command with ``--format netcdf``, run in this process (``cli.main``: parser and command
    as the subprocess runs them, without a second interpreter start)."""
    if not any(importlib.util.find_spec(m) for m in ("h5py", "netCDF4")):
        pytest.fail("no NetCDF backend installed: h5netcdf needs h5py (the dependency is h5netcdf[h5py])")
    out = tmp_path_factory.mktemp("cli-nc")
    with subscription_key():
        assert main(["materialise", *_args(twin, twin_maps, out), "--format", "netcdf"]) == 0
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


@pytest.mark.parametrize("name", ["sentinel1__10m", "worldcover__10m", "wri_canopy_height_map__10m"])
def test_netcdf_equals_the_geotiff_with_crs_and_coordinates(cli_out: Path, nc_out: Path, name: str) -> None:
    """Reopened with xarray: the raw values equal the GeoTIFF's bands (``[T, C]`` flattened as
    ``t·C + c``), ``y``/``x`` are the GeoTIFF's pixel centres, the CRS is the tile's (read from the CF
    grid mapping by rioxarray), ``time`` holds the period starts of the band descriptions, and nodata
    is the ``_FillValue`` that xarray masks on a default open; GDAL's netCDF driver sees the same grid."""
    with rasterio.open(cli_out / f"{name}.tif") as tif:
        pixels, transform, nodata, labels = tif.read(), tif.transform, tif.nodata, tif.descriptions
        epsg = tif.crs.to_epsg()
    # decode_coords="all": the grid mapping variable becomes the coordinate rioxarray reads the CRS from
    with xr.open_dataset(nc_out / f"{name}.nc", mask_and_scale=False, decode_coords="all") as ds:
        raw = ds["data"].load()
        assert raw.dims == ("time", "band", "y", "x") and raw.dtype == pixels.dtype
        t, c, h, w = raw.shape
        np.testing.assert_array_equal(raw.values.reshape(t * c, h, w), pixels)
        assert raw.rio.crs.to_epsg() == epsg == BC.tile.epsg
        assert raw.rio.transform() == transform
        np.testing.assert_allclose(raw["x"], transform.c + (np.arange(w) + 0.5) * transform.a)
        np.testing.assert_allclose(raw["y"], transform.f + (np.arange(h) + 0.5) * transform.e)
        if t > 1:  # monthly: descriptions "<band>@<period start>", period-major
            starts = [lab.split("@")[1] for lab in labels[::c]]
            assert [str(v)[:10] for v in raw["time"].values] == starts
            assert list(raw["band"].values) == [lab.split("@")[0] for lab in labels[:c]]
        fill = ds["data"].attrs.get("_FillValue")
    assert (np.isnan(fill) and np.isnan(nodata)) or fill == nodata
    with rasterio.open(f"netcdf:{nc_out / name}.nc:data") as gdal:  # what QGIS sees: GDAL's netCDF driver
        assert (gdal.crs.to_epsg(), gdal.transform, gdal.count) == (epsg, transform, t * c)
        assert (np.isnan(gdal.nodata) and np.isnan(nodata)) or gdal.nodata == nodata
    with xr.open_dataset(nc_out / f"{name}.nc") as decoded:  # default open: nodata → NaN
        masked = np.isnan(decoded["data"].values.reshape(t * c, h, w))
    expected = np.isnan(pixels) if np.isnan(nodata) else pixels == nodata
    np.testing.assert_array_equal(masked, expected)
    # The twin's WorldCover has no valid class over this tile (ALL_NODATA): its file checks the nodata path.
    assert (~expected).any() or name == "worldcover__10m", "nothing but nodata: the comparison proves little"


def test_build_tile_index_and_osm_dir_options(tmp_path: Path, capsys) -> None:
    """``build --tile-index NAME=URL[@BASE]`` overrides one index and keeps the other's real host (the
    end-to-end use is ``test_default_build``); bad values fail before any work, naming the problem."""
    from olmoearth_data.cli import build_parser
    from olmoearth_data.materialise.tile_export import tile_indexes_from_args
    from olmoearth_data.stac.tile_index import DEFAULT_TILE_INDEXES

    base = ["build", "--samples", str(tmp_path / "s.parquet"), "--corpus", str(tmp_path / "c.zarr")]
    args = build_parser().parse_args(
        [
            *base,
            "--tile-index",
            "wri-canopy-height=http://127.0.0.1:1/a/b/tiles.geojson@http://127.0.0.1:1/a/",
            "--tile-index",
            "worldcereal-2021=https://mirror.example/wc/aez.geojson",
        ]
    )
    refs = tile_indexes_from_args(args.tile_index)
    assert refs["wri-canopy-height"].url == "http://127.0.0.1:1/a/b/tiles.geojson"
    assert refs["wri-canopy-height"].base == "http://127.0.0.1:1/a/"
    assert refs["worldcereal-2021"].base == "https://mirror.example/wc/"  # default: the index's folder
    assert tile_indexes_from_args(None) == DEFAULT_TILE_INDEXES
    for value, message in [
        ("canopy=http://h/x.geojson", "unknown tile index 'canopy'"),
        ("wri-canopy-height", "expected NAME=URL[@BASE]"),
        ("wri-canopy-height=tiles.geojson", "URL must be an http(s) URL"),
        ("wri-canopy-height=http://h/x.geojson@/local/", "BASE must be an http(s) URL"),
    ]:
        with pytest.raises(SystemExit) as exited:
            main([*base, "--tile-index", value])
        assert exited.value.code == 2 and message in capsys.readouterr().err, value
    assert main([*base, "--osm-dir", str(tmp_path / "nowhere")]) == 2
    assert "no raster/ folder" in capsys.readouterr().err
