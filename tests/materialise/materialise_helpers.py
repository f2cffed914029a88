"""Shared helpers of the materialisation tests: twin catalogue access and direct COG reads.

Expected pixels are computed here from the COG files on disk (the twin's blob folder) with plain
rasterio window reads or by-hand nearest-neighbour sampling, never with the pipeline under test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from pyproj import Transformer
from rasterio.windows import from_bounds

from olmoearth_data.grid import Tile
from olmoearth_data.samples import Sample
from olmoearth_twin import Catalog, parse_blob_url
from olmoearth_twin.servers.twin import reset_pc_sdk
from olmoearth_twin.testing import COLLECTIONS_TEST_SAMPLES

#: The collections test samples: the S2 pair (British Columbia, not CONUS) and West Oakland (CONUS).
SAMPLES = list(COLLECTIONS_TEST_SAMPLES)
BC, OAKLAND = SAMPLES[0], SAMPLES[2]


@contextmanager
def subscription_key(value: str | None = "twin-test-key") -> Iterator[None]:
    """``PC_SDK_SUBSCRIPTION_KEY`` set (or unset with ``None``) for a block, the SDK's caches reset."""
    saved = os.environ.get("PC_SDK_SUBSCRIPTION_KEY")
    if value is None:
        os.environ.pop("PC_SDK_SUBSCRIPTION_KEY", None)
    else:
        os.environ["PC_SDK_SUBSCRIPTION_KEY"] = value
    reset_pc_sdk()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PC_SDK_SUBSCRIPTION_KEY", None)
        else:
            os.environ["PC_SDK_SUBSCRIPTION_KEY"] = saved
        reset_pc_sdk()


def blob_path(catalog: Catalog, href: str) -> Path:
    """The file on disk behind an item's (unsigned) blob href."""
    ref = parse_blob_url(url=href)
    return catalog.blobs_dir / ref.account / ref.container / ref.path


def sample_entry(manifest: dict[str, Any], sample: Sample) -> dict[str, Any]:
    return next(s for s in manifest["samples"] if s["tile_id"] == sample.tile.id)


def read_aligned(path: Path, tile: Tile, *, fill: float) -> np.ndarray:
    """A window read of a COG on the tile's own grid (same CRS, pixel edges on the tile's): ``[H, W]``."""
    with rasterio.open(path) as ds:
        assert ds.crs.to_epsg() == tile.epsg
        window = from_bounds(*tile.bounds, transform=ds.transform)
        return ds.read(1, window=window, boundless=True, fill_value=fill)


def read_nearest(path: Path, tile: Tile, *, pixel_size_m: float, fill: float) -> np.ndarray:
    """Nearest-neighbour samples of a COG (any CRS) at the tile grid's pixel centres, by hand: each
    centre is projected into the file's CRS with pyproj and the pixel containing it is taken."""
    n = round(2560 / pixel_size_m)
    x0, _, _, y1 = tile.bounds
    cx, cy = np.meshgrid(x0 + (np.arange(n) + 0.5) * pixel_size_m, y1 - (np.arange(n) + 0.5) * pixel_size_m)
    with rasterio.open(path) as ds:
        fx, fy = Transformer.from_crs(tile.epsg, ds.crs, always_xy=True).transform(cx, cy)
        col = np.floor((fx - ds.transform.c) / ds.transform.a).astype(int)
        row = np.floor((fy - ds.transform.f) / ds.transform.e).astype(int)
        data = ds.read(1)
    inside = (row >= 0) & (row < data.shape[0]) & (col >= 0) & (col < data.shape[1])
    out = np.full((n, n), fill, dtype=data.dtype)
    out[inside] = data[row[inside], col[inside]]
    return out


def reproject_bilinear(path: Path, tile: Tile, *, pixel_size_m: float, nodata: float) -> np.ndarray:
    """A COG warped onto the tile grid with GDAL's bilinear kernel (rasterio.warp, not odc-stac)."""
    from rasterio.warp import Resampling, reproject

    n = round(2560 / pixel_size_m)
    x0, _, _, y1 = tile.bounds
    with rasterio.open(path) as ds:
        out = np.full((n, n), nodata, dtype=ds.dtypes[0])
        reproject(
            source=rasterio.band(ds, 1),
            destination=out,
            dst_transform=rasterio.Affine(pixel_size_m, 0, x0, 0, -pixel_size_m, y1),
            dst_crs=f"EPSG:{tile.epsg}",
            src_nodata=nodata,
            dst_nodata=nodata,
            resampling=Resampling.bilinear,
        )
    return out


def landsat_first_valid(
    catalog: Catalog, items: dict[str, Any], ids: list[str], tile: Tile, fallback: Sequence[str] = ()
) -> np.ndarray:
    """First valid over ``ids`` (in order) of each item's 8 Landsat assets warped bilinearly onto the
    tile's 20 m grid: ``[8, 128, 128]`` uint16, 0 = nodata.

    The 7 SR bands decide validity and fill together; B10 (``lwir11``, which L2SR items lack) fills on
    its own: per pixel from the first item with a thermal value there, over ``ids`` and then over
    ``fallback`` (the period's other items, in search order)."""
    from olmoearth_data.modalities import get_modality
    from olmoearth_data.sources import get_source

    assets = [get_source("landsat_l2").asset_for(b) for b in get_modality("landsat_l2").bands]
    out = np.zeros((len(assets), 128, 128), dtype=np.uint16)
    filled = np.zeros((128, 128), dtype=bool)
    thermal = np.zeros((128, 128), dtype=bool)

    def warp(item_id: str, asset: str) -> np.ndarray:
        href = items[item_id]["assets"][asset]["href"]
        return reproject_bilinear(blob_path(catalog, href), tile, pixel_size_m=20.0, nodata=0)

    for item_id in ids:
        stack = np.stack([warp(item_id, a) for a in assets[:7]])
        take = (stack != 0).any(axis=0) & ~filled
        out[:7, take] = stack[:, take]
        filled |= take
    for item_id in (*ids, *fallback):
        if "lwir11" in items[item_id]["assets"]:
            b10 = warp(item_id, "lwir11")
            take = (b10 != 0) & ~thermal
            out[7, take] = b10[take]
            thermal |= take
    return out
