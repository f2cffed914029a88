"""The twin's WorldCover agrees with its Sentinel-2 pixels (labels a probe can learn from the inputs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.warp import Resampling, reproject

from olmoearth_twin import Catalog
from olmoearth_twin.blob_urls import parse_blob_url
from olmoearth_twin.catalog.samples import SMALL_SAMPLES

#: S2 reflectance DN (offset removed) below which a clear pixel is the twin's lake: land NIR is
#: thousands, the lake's 1–50.
WATER_NIR_DN = 300


def _local(catalog: Catalog, href: str) -> Path:
    ref = parse_blob_url(url=href)
    assert ref is not None
    return catalog.blobs_dir / ref.account / ref.container / ref.path


def _read_on_tile(path: Path, bounds: tuple[float, float, float, float], epsg: int, res: int) -> np.ndarray:
    """The raster at ``path`` on the tile's UTM grid at ``res`` m (nearest neighbour), 0 outside."""
    width, height = round((bounds[2] - bounds[0]) / res), round((bounds[3] - bounds[1]) / res)
    out = np.zeros((height, width), dtype=np.float32)
    with rasterio.open(path) as src:
        reproject(
            source=src.read(1).astype(np.float32),
            destination=out,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=src.nodata,
            dst_transform=rasterio.transform.from_bounds(*bounds, width, height),
            dst_crs=f"EPSG:{epsg}",
            dst_nodata=0,
            resampling=Resampling.nearest,
        )
    return out


def _clearest_item(catalog: Catalog, tile_id: str) -> dict[str, Any]:
    manifest = catalog.manifest()
    entries = [e for e in manifest["items"] if tile_id in e["tiles"]]
    best = min(entries, key=lambda e: (-e["tile_stats"][tile_id]["valid_fraction"], e["eo:cloud_cover"]))
    return next(i for i in catalog.items() if i["id"] == best["id"]), best


def test_worldcover_is_tied_to_the_sentinel2_ground(twin_catalog: Catalog, twin_collections: Catalog) -> None:
    # twin_collections' samples include twin_catalog's, with the same seed, so the granule groups and
    # their ground are the same.
    tile = SMALL_SAMPLES[0].tile
    bounds, epsg = tile.bounds, tile.epsg
    item, entry = _clearest_item(twin_catalog, tile.id)
    nir = _read_on_tile(_local(twin_catalog, item["assets"]["B08"]["href"]), bounds, epsg, 10)
    scl = _read_on_tile(_local(twin_catalog, item["assets"]["SCL"]["href"]), bounds, epsg, 20)
    clear = np.repeat(np.repeat(~np.isin(scl, (0, 3, 8, 9, 10)), 2, axis=0), 2, axis=1)
    nir = nir - entry["boa_add_offset"]
    worldcover = next(
        i
        for i in twin_collections.items()
        if i["collection"] == "esa-worldcover"
        and i["properties"]["esa_worldcover:product_version"] == "2.0.0"
    )
    classes = _read_on_tile(_local(twin_collections, worldcover["assets"]["map"]["href"]), bounds, epsg, 10)

    assert clear.mean() > 0.3
    assert (classes > 0).all(), "the WorldCover map covers the whole sample tile"
    present = set(np.unique(classes).astype(int).tolist())
    assert {80, 40, 60} <= present and len(present) >= 5, present
    lake_s2 = (nir < WATER_NIR_DN) & clear
    lake_wc = (classes == 80) & clear
    assert lake_s2.sum() > 200
    iou = (lake_s2 & lake_wc).sum() / (lake_s2 | lake_wc).sum()
    assert iou > 0.85, iou
    # The cut points are on local brightness, so the built-up class is brighter than shrubland.
    assert np.median(nir[(classes == 50) & clear]) > np.median(nir[(classes == 20) & clear])
