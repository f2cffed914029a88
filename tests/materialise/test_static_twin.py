"""Static maps from the twin (WorldCover, NASADEM elevation, USDA CDL): one mosaic per tile.

Expected pixels are nearest-neighbour samples taken by hand (pyproj + pixel index arithmetic) from the
COG files of the items the twin's manifest lists for the tile; CDL's year is chosen in the test from
the items' dates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import rasterio

from olmoearth_data.build import GDAL_OPTIONS
from olmoearth_data.materialise.static import materialise_static
from olmoearth_data.missing import MissingReason
from olmoearth_data.modalities import get_modality
from olmoearth_data.results import ModalityResult
from olmoearth_data.samples import Sample
from olmoearth_data.sources import get_source
from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy
from olmoearth_data.stac.search import SearchCache
from olmoearth_twin import Catalog, Twin

from .materialise_helpers import BC, OAKLAND, blob_path, read_nearest, sample_entry

pytestmark = pytest.mark.twin

#: modality → (collection, asset, nodata)
STATIC = {
    "worldcover": ("esa-worldcover", "map", 0),
    "srtm": ("nasadem", "elevation", -32768),
    "cdl": ("usda-cdl", "cropland", 0),
}


@pytest.fixture(scope="module")
def results(
    twin: Twin, twin_collections: Catalog, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, str], ModalityResult]:
    config = CatalogConfig(
        stac_url=twin.stac_url, blob_endpoint=twin.assets_url, retry=RetryPolicy(attempts=3, backoff_s=0.01)
    )
    cache = SearchCache(tmp_path_factory.mktemp("static-cache"))
    out = {}
    with rasterio.Env(**GDAL_OPTIONS):
        for sample in (OAKLAND, BC):
            for name in STATIC:
                out[sample.tile.id, name] = materialise_static(
                    sample=sample,
                    spec=get_modality(name),
                    source=get_source(name),
                    client=config.open_client(),
                    stac_url=config.stac_url,
                    sign=config.signer(),
                    cache=cache,
                )
    return out


def _expected(catalog: Catalog, sample: Sample, name: str, ids: list[str], dtype: str) -> np.ndarray:
    _, asset, nodata = STATIC[name]
    items = {i["id"]: i for i in catalog.items()}
    out = np.full((256, 256), nodata, dtype=dtype)
    for item_id in sorted(ids):  # no sort key: the mosaic order is by id
        path = blob_path(catalog, items[item_id]["assets"][asset]["href"])
        data = read_nearest(path, sample.tile, pixel_size_m=10.0, fill=nodata)
        take = (data != nodata) & (out == nodata)
        out[take] = data[take]
    return out


def _cdl_year_ids(catalog: Catalog, ids: list[str], centre) -> tuple[int, list[str]]:
    items = {i["id"]: i for i in catalog.items()}
    years = {i: int(items[i]["properties"]["start_datetime"][:4]) for i in ids}
    inside = [y for y in years.values() if y == centre.year]
    year = inside[0] if inside else max(years.values(), key=lambda y: (-abs(y - centre.year), y))
    return year, [i for i, y in years.items() if y == year]


@pytest.mark.parametrize("name", list(STATIC))
def test_static_maps_equal_nearest_samples_of_the_cogs(
    results: dict, twin_collections: Catalog, name: str
) -> None:
    spec = get_modality(name)
    result = results[OAKLAND.tile.id, name]
    collection = STATIC[name][0]
    ids = sample_entry(twin_collections.manifest(), OAKLAND)["static"][collection]
    assert ids, f"the twin lists {collection} items for West Oakland"
    if name == "cdl":
        year, ids = _cdl_year_ids(twin_collections, ids, OAKLAND.centre)
        assert result.extra["cdl_year"] == year == 2021
    data = result.arrays["10m"]
    assert data.shape == (1, 1, 256, 256) and data.dtype == np.dtype(spec.dtype)
    assert result.present[0] and result.reason[0] == MissingReason.PRESENT
    assert set(result.item_ids[0]) <= set(ids)
    expected = _expected(twin_collections, OAKLAND, name, ids, spec.dtype)
    mismatch = np.mean(data[0, 0] != expected)
    # GDAL's warper samples through an approximate transformer (error ≤ 1/8 px): a pixel centre within
    # that distance of a source edge may take the neighbour. Anything more is a real difference.
    assert mismatch < 0.002, f"{name}: {mismatch:.4%} of pixels differ from nearest samples"
    assert (data != STATIC[name][2]).mean() > 0.5


def test_every_static_bandset_has_the_tile_grid_shape(results: dict[Any, ModalityResult]) -> None:
    for (_, name), result in results.items():
        for bs in get_modality(name).bandsets:
            assert result.arrays[bs.name].shape == (1, len(bs.bands), bs.pixels_per_tile, bs.pixels_per_tile)


def test_cdl_outside_conus_is_outside_coverage(results: dict, twin_collections: Catalog) -> None:
    assert sample_entry(twin_collections.manifest(), BC)["static"]["usda-cdl"] == []
    cdl = results[BC.tile.id, "cdl"]
    assert not cdl.present[0] and cdl.reason[0] == MissingReason.OUTSIDE_COVERAGE
    assert (cdl.arrays["10m"] == 0).all() and "cdl_year" not in cdl.extra
    for name in ("worldcover", "srtm"):  # global maps: found, and present exactly when a pixel is valid
        ids = sample_entry(twin_collections.manifest(), BC)["static"][STATIC[name][0]]
        expected = _expected(twin_collections, BC, name, ids, get_modality(name).dtype)
        result = results[BC.tile.id, name]
        has_data = bool((expected != STATIC[name][2]).any())
        assert result.present[0] == has_data
        assert result.reason[0] == (MissingReason.PRESENT if has_data else MissingReason.ALL_NODATA)
