"""The ``default`` modality set built end to end from the twin by ``olmoearth-data build`` (a subprocess:
dask, Zarr): British Columbia (not CONUS, no OSM extraction) and West Oakland (CONUS, the OSM fixture).

West Oakland gets every modality of the default set — Sentinel-2 from ``twin_oakland_s2``, the tile-index
maps (canopy height, WorldCereal) from ``twin_maps`` through ``CatalogConfig.tile_indexes`` — and British
Columbia gets CDL and the OSM raster missing with their reasons. Every bandset is read back as a
georeferenced DataArray and compared with the tile grid computed here from the tile id (data spec §2:
``x0 = 2560·col``, ``y0 = −2560·row``); pixel values are checked against direct reads in the
per-modality tests, and once here for NASADEM elevation at the DataArray's own coordinates.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from pyproj import Transformer

from olmoearth_data.analysis import open_corpus, sample_bandset
from olmoearth_data.index import index_path
from olmoearth_data.missing import MissingReason, SampleStatus
from olmoearth_data.modalities import MODALITY_SETS, get_modality
from olmoearth_data.osm.extract import extract_osm
from olmoearth_data.samples import write_sample_table
from olmoearth_twin import Catalog, Twin
from olmoearth_twin.fixtures import fixture_path

from .materialise_helpers import BC, OAKLAND, blob_path, sample_entry
from .test_tile_index_twin import twin_refs

pytestmark = [pytest.mark.twin, pytest.mark.slow]

DEFAULT = MODALITY_SETS["default"]
CLI = [sys.executable, "-m", "olmoearth_data.cli", "build"]
BC_ROW, OAK_ROW = 0, 1


@pytest.fixture(scope="module")
def corpus_path(
    twin: Twin, twin_collections: Catalog, twin_maps: Catalog, twin_oakland_s2: Catalog
) -> Iterator[Path]:
    """The corpus built by ``olmoearth-data build`` as a subprocess: ``--osm-dir`` gives the OSM
    extraction, ``--tile-index`` points canopy height and WorldCereal at the twin's indexes."""
    work = Path(tempfile.mkdtemp(prefix="olmoearth-default-corpus-"))
    table = work / "samples.parquet"
    write_sample_table(table, samples=[BC, OAKLAND])
    extract_osm(path=fixture_path("osm/West-Oakland.osm.bz2"), out_dir=work / "osm")
    corpus = work / "default.zarr"
    args = ["--samples", str(table), "--corpus", str(corpus), "--modalities", "default",
            "--samples-per-shard", "1", "--workers", "2", "--cache-dir", str(work / "cache"),
            "--stac-url", twin.stac_url, "--blob-endpoint", twin.assets_url, "--retries", "3",
            "--backoff-s", "0.01", "--osm-dir", str(work / "osm")]  # fmt: skip
    for name, ref in twin_refs(twin, twin_maps).items():
        args += ["--tile-index", f"{name}={ref.url}@{ref.base}"]
    env = {**os.environ, "PC_SDK_SUBSCRIPTION_KEY": "twin-test-key"}  # the twin's env: exported by `twin`
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.index("{") :])
    assert (summary["complete"], summary["dropped"]) == (2, 0)
    yield corpus
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def corpus(corpus_path: Path) -> xr.DataTree:
    return open_corpus(corpus_path)


def _present(tree: xr.DataTree, name: str, row: int) -> np.ndarray:
    return np.atleast_1d(tree[name].dataset["present"].values[row])


def _reasons(tree: xr.DataTree, name: str, row: int) -> set[MissingReason]:
    return {MissingReason(int(r)) for r in np.atleast_1d(tree[name].dataset["reason"].values[row])}


def test_west_oakland_has_every_modality_of_the_default_set(corpus: xr.DataTree) -> None:
    assert list(corpus.dataset["status"].values) == [SampleStatus.COMPLETE] * 2
    assert set(DEFAULT) <= set(corpus.children)
    for name in DEFAULT:
        present = _present(corpus, name, OAK_ROW)
        if get_modality(name).is_multitemporal:
            assert present.sum() >= 6, f"{name}: {present.sum()} of 12 periods"
        else:
            assert present.all(), f"{name}: {_reasons(corpus, name, OAK_ROW)}"
            assert _reasons(corpus, name, OAK_ROW) == {MissingReason.PRESENT}, name


def test_oakland_s2_periods_follow_the_twin_catalogue(corpus: xr.DataTree, twin_oakland_s2: Catalog) -> None:
    """A month with S2 items in the catalogue is present; an empty month is missing with NO_ITEMS."""
    periods = sample_entry(twin_oakland_s2.manifest(), OAKLAND)["periods"]
    has_items = np.array([bool(p["items"]) for p in periods])
    assert has_items.any() and not has_items.all(), "fixture changed: want full and empty months"
    np.testing.assert_array_equal(_present(corpus, "sentinel2_l2a", OAK_ROW), has_items)
    reasons = corpus["sentinel2_l2a"].dataset["reason"].values[OAK_ROW]
    assert (reasons[~has_items] == MissingReason.NO_ITEMS).all()


def test_british_columbia_lacks_cdl_and_osm_with_their_reasons(
    corpus: xr.DataTree, corpus_path: Path
) -> None:
    for name in ("cdl", "openstreetmap_raster"):  # CDL: CONUS only; OSM: the extraction covers Oakland
        assert not _present(corpus, name, BC_ROW).any()
        assert _reasons(corpus, name, BC_ROW) == {MissingReason.OUTSIDE_COVERAGE}, name
        data = sample_bandset(
            corpus, sample=BC_ROW, modality=name, bandset=get_modality(name).bandsets[0].name
        )
        assert (data.values == data.rio.nodata).all() if name == "cdl" else not data.values.any()
    for name in set(DEFAULT) - {"cdl", "openstreetmap_raster", "worldcover"}:
        assert _present(corpus, name, BC_ROW).any(), name
    # The twin's WorldCover tile over British Columbia may hold no valid class there: found, then empty.
    assert _reasons(corpus, "worldcover", BC_ROW) <= {MissingReason.PRESENT, MissingReason.ALL_NODATA}
    index = gpd.read_parquet(index_path(corpus_path))
    years = index.set_index("sample")["cdl:cdl_year"]  # the CDL year used is recorded per sample
    assert np.isnan(years[BC_ROW]) and 2008 <= years[OAK_ROW] <= OAKLAND.centre.year + 1


@pytest.mark.parametrize("row", [BC_ROW, OAK_ROW], ids=["british-columbia", "west-oakland"])
def test_every_bandset_is_on_the_tile_grid(corpus: xr.DataTree, row: int) -> None:
    tile_id = str(corpus.dataset["tile_id"].values[row])
    epsg, col, tile_row = (int(v) for v in tile_id.removeprefix("EPSG:").split("_"))
    x0, y0 = 2560.0 * col, -2560.0 * tile_row
    checked = 0
    for name in DEFAULT:
        for bs in get_modality(name).bandsets:
            da = sample_bandset(corpus, sample=row, modality=name, bandset=bs.name)
            px = bs.pixel_size_m
            assert da.rio.crs.to_epsg() == epsg, (name, bs.name)
            assert da.rio.transform() == Affine(px, 0.0, x0, 0.0, -px, y0), (name, bs.name)
            assert da.rio.shape == (round(2560 / px),) * 2, (name, bs.name)
            assert da.rio.bounds() == pytest.approx((x0, y0 - 2560, x0 + 2560, y0)), (name, bs.name)
            checked += 1
    assert checked == sum(len(get_modality(n).bandsets) for n in DEFAULT)


def test_elevation_pixels_sit_at_their_coordinates(corpus: xr.DataTree, twin_collections: Catalog) -> None:
    """NASADEM at each Oakland pixel's own ``x``/``y`` (projected into the file's lon/lat grid by pyproj,
    the containing file pixel taken) equals the stored value: the pixels are where the georeferencing
    says, not merely on a grid of the right shape."""
    da = sample_bandset(corpus, sample=OAK_ROW, modality="srtm", bandset="10m")
    items = {i["id"]: i for i in twin_collections.items()}
    (item_id,) = sample_entry(twin_collections.manifest(), OAKLAND)["static"]["nasadem"]
    path = blob_path(twin_collections, items[item_id]["assets"]["elevation"]["href"])
    x, y = np.meshgrid(da["x"].values, da["y"].values)
    with rasterio.open(path) as ds:
        fx, fy = Transformer.from_crs(da.rio.crs, ds.crs, always_xy=True).transform(x, y)
        col = np.floor((fx - ds.transform.c) / ds.transform.a).astype(int)
        row = np.floor((fy - ds.transform.f) / ds.transform.e).astype(int)
        expected = ds.read(1)[row, col]
    mismatch = np.mean(da.values[0] != expected)
    assert mismatch < 0.002, f"{mismatch:.4%} of pixels differ from the file at their coordinates"
