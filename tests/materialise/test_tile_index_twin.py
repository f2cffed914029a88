"""Tile-index maps from the twin (WRI/Meta canopy height, WorldCereal 2021) through their GeoJSON indexes.

Expected pixels come from the files on disk: every index feature's file (read from the index JSON on
disk, not through the code under test) warped onto the tile grid with rasterio (canopy height: GDAL
``average``) or sampled by hand (WorldCereal: nearest), merged first valid in id order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.merge import merge
from rasterio.warp import Resampling, reproject, transform_bounds

from olmoearth_data.build import GDAL_OPTIONS
from olmoearth_data.materialise.sample import materialise_sample
from olmoearth_data.materialise.tile_index import materialise_tile_index
from olmoearth_data.missing import MissingReason
from olmoearth_data.modalities import WORLDCEREAL_PRODUCTS, get_modality
from olmoearth_data.results import ModalityResult
from olmoearth_data.samples import Sample
from olmoearth_data.sources import get_source
from olmoearth_data.stac.catalog import RetryPolicy
from olmoearth_data.stac.tile_index import TileIndexRef
from olmoearth_twin import Catalog, Twin
from olmoearth_twin.full import tile_index_refs

from .materialise_helpers import BC, OAKLAND, SAMPLES, read_nearest

pytestmark = pytest.mark.twin

MAPS = {"wri_canopy_height_map": "wri-canopy-height", "worldcereal": "worldcereal-2021"}
RETRY = RetryPolicy(attempts=3, backoff_s=0.01, timeout_s=10)


def twin_refs(twin: Twin, catalog: Catalog) -> dict[str, TileIndexRef]:
    """The twin's tile indexes as ``CatalogConfig.tile_indexes`` entries."""
    return tile_index_refs(twin=twin, maps=catalog)


def _index_on_disk(catalog: Catalog, name: str) -> tuple[Path, list[dict[str, Any]]]:
    entry = catalog.manifest()["tile_indexes"][name]
    root = catalog.blobs_dir / entry["account"] / entry["container"]
    return root, json.loads((root / entry["path"]).read_text())["features"]


@pytest.fixture(scope="module")
def results(twin: Twin, twin_maps: Catalog) -> dict[tuple[str, str], ModalityResult]:
    refs = twin_refs(twin, twin_maps)
    out = {}
    with rasterio.Env(**GDAL_OPTIONS):
        for sample in SAMPLES:
            for name, collection in MAPS.items():
                out[sample.tile.id, name] = materialise_tile_index(
                    sample=sample,
                    spec=get_modality(name),
                    source=get_source(name),
                    ref=refs[collection],
                    retry=RETRY,
                )
    return out


def _expected_canopy(catalog: Catalog, sample: Sample) -> np.ndarray:
    """Every canopy file on disk mosaicked whole, then averaged onto the tile grid by one GDAL warp."""
    root, features = _index_on_disk(catalog, "wri-canopy-height")
    x0, _, _, y1 = sample.tile.bounds
    paths = [root / f["properties"]["href"] for f in sorted(features, key=lambda f: f["properties"]["tile"])]
    with rasterio.open(paths[0]) as ds:
        crs, g = ds.crs, ds.transform
    left, bottom, right, top = transform_bounds(f"EPSG:{sample.tile.epsg}", crs, *sample.tile.bounds)
    # 100 m of EPSG:3857 beyond the tile, on the files' pixel grid (all quadkey tiles share it)
    col0, col1 = np.floor((left - 100 - g.c) / g.a), np.ceil((right + 100 - g.c) / g.a)
    row0, row1 = np.floor((g.f - top - 100) / -g.e), np.ceil((g.f - bottom + 100) / -g.e)
    bounds = (g.c + col0 * g.a, g.f + row1 * g.e, g.c + col1 * g.a, g.f + row0 * g.e)
    mosaic, transform = merge(paths, bounds=bounds, nodata=255, method="first")
    out = np.full((256, 256), 255, np.uint8)
    reproject(
        source=mosaic[0],
        destination=out,
        src_transform=transform,
        src_crs=crs,
        src_nodata=255,
        dst_transform=rasterio.Affine(10.0, 0, x0, 0, -10.0, y1),
        dst_crs=f"EPSG:{sample.tile.epsg}",
        dst_nodata=255,
        resampling=Resampling.average,
    )
    return out


def _zone_stacks(catalog: Catalog, sample: Sample) -> list[tuple[str, np.ndarray]]:
    """Each WorldCereal zone's 8 products sampled at the tile's pixel centres, by zone id."""
    root, features = _index_on_disk(catalog, "worldcereal-2021")
    stacks = []
    for feature in sorted(features, key=lambda f: str(f["properties"]["aez_id"])):
        # files: "tc-maize-main_irrigation"; bands: "tc-maize-main-irrigation-classification"
        hrefs = {
            f"{k.replace('_', '-')}-classification": v for k, v in feature["properties"]["hrefs"].items()
        }
        layers = [
            read_nearest(root / hrefs[p], sample.tile, pixel_size_m=10.0, fill=255)
            for p in WORLDCEREAL_PRODUCTS
        ]
        stacks.append((str(feature["properties"]["aez_id"]), np.stack(layers)))
    return stacks


def _expected_worldcereal(catalog: Catalog, sample: Sample) -> np.ndarray:
    out = np.full((len(WORLDCEREAL_PRODUCTS), 256, 256), 255, np.uint8)
    filled = np.zeros((256, 256), bool)
    for _, stack in _zone_stacks(catalog, sample):
        take = (stack != 255).any(axis=0) & ~filled
        out[:, take] = stack[:, take]
        filled |= take
    out[(out > 100) & (out != 255)] = 0
    return out


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.tile.id)
def test_canopy_height_equals_direct_average(results, twin_maps: Catalog, sample: Sample) -> None:
    result = results[sample.tile.id, "wri_canopy_height_map"]
    got = result.arrays["10m"][0, 0]
    expected = _expected_canopy(twin_maps, sample)
    assert result.present[0] and result.reason[0] == MissingReason.PRESENT
    assert (got == 255).sum() == (expected == 255).sum()
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.tile.id)
def test_worldcereal_equals_direct_reads(results, twin_maps: Catalog, sample: Sample) -> None:
    result = results[sample.tile.id, "worldcereal"]
    got = result.arrays["10m"][0]
    expected = _expected_worldcereal(twin_maps, sample)
    mismatch = np.mean(got != expected)
    # GDAL's warper samples through an approximate transformer (error ≤ 1/8 px): a pixel centre within
    # that distance of a source edge may take the neighbour (as in test_static_twin).
    assert mismatch < 0.002, f"{mismatch:.4%} of pixels differ from nearest samples"
    assert set(np.unique(got)) <= {0, 100, 255}
    assert result.present[0]


def test_worldcereal_overlapping_zones_both_kept(results, twin_maps: Catalog) -> None:
    """Over the first tile two zones overlap with nodata on opposite sides: the output is covered
    wherever either zone has data, and each zone supplies pixels the other lacks."""
    stacks = [(z, s) for z, s in _zone_stacks(twin_maps, BC) if (s != 255).any()]
    assert len(stacks) == 2, "fixture changed: expected two zones over the first tile"
    covered = [(s != 255).any(axis=0) for _, s in stacks]
    only = [covered[0] & ~covered[1], covered[1] & ~covered[0]]
    assert only[0].any() and only[1].any(), "fixture changed: zones do not complement each other"
    result = results[BC.tile.id, "worldcereal"]
    got_covered = (result.arrays["10m"][0] != 255).any(axis=0)
    assert np.mean(got_covered != (covered[0] | covered[1])) < 0.002  # edge pixels only (see above)
    assert got_covered[only[0]].mean() > 0.99 and got_covered[only[1]].mean() > 0.99
    assert sorted(result.item_ids[0]) == sorted(z for z, _ in stacks)


def test_sample_dispatches_tile_index_sources(twin: Twin, twin_maps: Catalog, results) -> None:
    """Through ``materialise_sample`` the two maps are built (not ``NOT_BUILT``) when indexes are given,
    and stay ``NOT_BUILT`` when they are not."""
    specs = [get_modality(n) for n in MAPS]
    kwargs = dict(index=0, sample=OAKLAND, specs=specs, client=None, stac_url="", sign=str, cache=None)
    with rasterio.Env(**GDAL_OPTIONS):
        built = materialise_sample(**kwargs, tile_indexes=twin_refs(twin, twin_maps), retry=RETRY)
        skipped = materialise_sample(**kwargs)
    for name in MAPS:
        np.testing.assert_array_equal(
            built.modalities[name].arrays["10m"], results[OAKLAND.tile.id, name].arrays["10m"]
        )
        assert skipped.modalities[name].reason[0] == MissingReason.NOT_BUILT


def test_tile_outside_every_index_is_outside_coverage(twin: Twin, twin_maps: Catalog) -> None:
    from olmoearth_data.grid import Tile

    far = Sample(Tile(epsg=32633, col=50, row=-2000), OAKLAND.centre)  # the Alps: no twin file there
    with rasterio.Env(**GDAL_OPTIONS):
        result = materialise_tile_index(
            sample=far,
            spec=get_modality("worldcereal"),
            source=get_source("worldcereal"),
            ref=twin_refs(twin, twin_maps)["worldcereal-2021"],
            retry=RETRY,
        )
    assert not result.present[0] and result.reason[0] == MissingReason.OUTSIDE_COVERAGE
    assert (result.arrays["10m"] == 255).all()
