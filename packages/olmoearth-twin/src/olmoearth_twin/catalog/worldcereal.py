"""ESA WorldCereal 2021 v100 (not on PC), one GeoTIFF per product and agro-ecological zone (AEZ).

Real: Zenodo record 7875105, 8 ``*_classification`` products, each a zip of per-AEZ GeoTIFFs in
EPSG:4326 at ~10 m (1/11132.5°), uint8: 0 = not this crop, 100 = this crop, 254 = not cropland (crop
type products outside the temporary-crop mask), 255 = nodata. AEZs overlap along their borders with
nodata on the far side, so a reader must merge every zone covering a tile (the reference's MOSAIC took
one arbitrary zone: data.md §4, pain point 9). The twin serves the unzipped GeoTIFFs from the blob
server's public container ``zenodo/7875105`` as ``2021/<aez>/<aez>_<product>_classification.tif`` and
an index ``2021/aez_index.geojson``: one feature per zone (footprint = the files' extent, properties
``aez_id`` and ``hrefs`` {product: path relative to the container}).

One zone per sample region, valid everywhere; in the first region, that zone is valid only east of a
tilted line through the first sample tile (plus a quarter tile), and a second zone shifted west is
valid only west of it (plus a quarter tile): the two overlap over that tile, their valid areas differ,
and only their merge covers it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from olmoearth_twin.catalog.cogs import write_cog
from olmoearth_twin.catalog.regions import Region

ACCOUNT, CONTAINER = "zenodo", "7875105"
INDEX_PATH = "2021/aez_index.geojson"
PRODUCTS = (
    "tc-annual_temporarycrops",
    "tc-maize-main_irrigation",
    "tc-maize-main_maize",
    "tc-maize-second_irrigation",
    "tc-maize-second_maize",
    "tc-springcereals_springcereals",
    "tc-wintercereals_irrigation",
    "tc-wintercereals_wintercereals",
)
RES_DEG = 1 / 11132.5  # ~10 m at the equator, WorldCereal's grid
NOT_CROPLAND, NODATA = 254, 255


def _zone(
    *,
    bounds: tuple[float, float, float, float],
    rng: np.random.Generator,
    valid_side: str,
    split: tuple[float, float, float],
) -> tuple[np.ndarray, Affine]:
    """All 8 products of one zone over ``bounds``. ``valid_side`` ``"all"``, or ``"west"``/``"east"``:
    valid up to / from ``overlap`` degrees beyond the line ``lon = lon_c + 0.15 (lat - lat_c)``, with
    ``split = (lon_c, lat_c, overlap)``."""
    lon0, lat0, lon1, lat1 = bounds
    col0, row0 = math.floor(lon0 / RES_DEG), math.floor(-lat1 / RES_DEG)
    width, height = math.ceil(lon1 / RES_DEG) - col0, math.ceil(-lat0 / RES_DEG) - row0
    transform = Affine(RES_DEG, 0.0, col0 * RES_DEG, 0.0, -RES_DEG, -row0 * RES_DEG)
    rows = np.arange(height)[:, None] / height
    lons = transform.c + (np.arange(width)[None, :] + 0.5) * RES_DEG
    lats = transform.f - (np.arange(height)[:, None] + 0.5) * RES_DEG
    lon_c, lat_c, overlap = split
    line = lon_c + 0.15 * (lats - lat_c)
    # Both zones are valid some way past the line, so their valid parts overlap and together cover it.
    valid = {
        "all": np.ones((height, width), bool),
        "west": lons < line + overlap,
        "east": lons > line - overlap,
    }[valid_side]
    fields = rng.random((height // 40 + 1, width // 40 + 1))
    crop = np.kron(fields, np.ones((40, 40)))[:height, :width] > 0.45
    kind = np.kron(rng.integers(0, 4, fields.shape), np.ones((40, 40), int))[:height, :width]
    irrigated = np.kron(rng.random(fields.shape) > 0.7, np.ones((40, 40), bool))[:height, :width]
    out = np.empty((len(PRODUCTS), height, width), np.uint8)
    for i, product in enumerate(PRODUCTS):
        if product == "tc-annual_temporarycrops":
            layer = np.where(crop, 100, 0)
        else:
            crop_kind = {"maize": 1, "springcereals": 2, "wintercereals": 3}
            name = product.split("_")[1]
            season = product.split("_")[0]
            hit = irrigated if name == "irrigation" else kind == crop_kind[name]
            if season == "tc-maize-second":
                hit = hit & (kind == 1) & (rows > 0.5)  # a second maize season only in part of the zone
            layer = np.where(crop, np.where(hit, 100, 0), NOT_CROPLAND)
        out[i] = np.where(valid, layer, NODATA)
    return out, transform


def worldcereal_zones(*, regions: list[Region], blobs: Path, seed: int) -> dict[str, Any]:
    """Write the zones' GeoTIFFs under ``blobs`` (the container folder) and the index; return it."""
    features = []
    for n, region in enumerate(regions):
        lon0, lat0, lon1, lat1 = region.lonlat_bounds(margin_m=1000.0)
        t0, _, t1, _ = region.samples[0].tile.polygon_lonlat().bounds
        tile_centre = region.samples[0].tile.polygon_lonlat().centroid
        split = (tile_centre.x, tile_centre.y, (t1 - t0) / 4)
        zones = [(10000 + region.seed() % 90000, (lon0, lat0, lon1, lat1), "all" if n else "east")]
        if n == 0:  # a neighbouring zone reaching over the first tile, valid on its other side
            dx = (lon1 - lon0) * 0.25
            zones.append((10000 + (region.seed() + 1) % 90000, (lon0 - dx, lat0, lon1 - dx, lat1), "west"))
        for aez, bounds, side in zones:
            rng = np.random.default_rng([seed, aez])
            stack, transform = _zone(bounds=bounds, rng=rng, valid_side=side, split=split)
            hrefs = {}
            for product, layer in zip(PRODUCTS, stack, strict=True):
                rel = f"2021/{aez}/{aez}_{product}_classification.tif"
                write_cog(path=blobs / rel, data=layer, epsg=4326, transform=transform, nodata=NODATA)
                hrefs[product] = rel
            w, h = stack.shape[2], stack.shape[1]
            x0, y1 = transform.c, transform.f
            x1, y0 = x0 + w * RES_DEG, y1 - h * RES_DEG
            ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
            features.append(
                {
                    "type": "Feature",
                    "properties": {"aez_id": aez, "hrefs": hrefs},
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
            )
    index = {"type": "FeatureCollection", "features": features}
    (blobs / INDEX_PATH).parent.mkdir(parents=True, exist_ok=True)
    (blobs / INDEX_PATH).write_text(json.dumps(index))
    return index
