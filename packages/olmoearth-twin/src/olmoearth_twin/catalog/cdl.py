# ruff: noqa: B023  (emit() is called inside the loop iteration whose variables it reads)
"""``usda-cdl`` items and COGs (CONUS Albers EPSG:5070, 30 m, uint8), for CONUS samples only.

Item shape: the stactools-usda-cdl items in ``fixtures/usda-cdl-stactools/`` (PC builds its items with
that package), ids ``<type>_<year(s)>_<xmin>_<ymin>_15000`` on the stactools 15 km tile grid (origin
x −106095, y 1807575), with PC-style links (PC's own ids/hrefs are not recorded: hrefs follow PC's
``usda-cdl/tiles/<xmin>/<ymin>/<file>`` layout, inferred). Years: ``cropland`` items 2008–2021 (the
collection extent), one ``cultivated`` 2021 and one ``frequency`` 2008–2021 item per tile.

Pixels: the real 500×500 CDL 2021 crop (``raster/2021_30m_cdls_-106095_1807575_15000.tif``) and the real
cultivated layer, written as a full 15 km tile; other years roll the crop by ``3·(2021−year)`` pixels
(crop rotation looks); confidence = 60–100 from a per-pixel hash; frequency layers count how often the
rolled crops hold corn (1), cotton (2), soybeans (5), wheat (22–24), nodata 255 outside crops.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box

from olmoearth_twin.catalog.cogs import write_cog
from olmoearth_twin.catalog.regions import Region, geojson_polygon, shp_transform

COLLECTION_ID = "usda-cdl"
CDL_FIXTURE = "raster/2021_30m_cdls_-106095_1807575_15000.tif"
CULTIVATED_FIXTURE = "raster/2021_cultivated_layer_-106095_1807575_15000.tif"
TEMPLATES = "usda-cdl-stactools"
YEARS = tuple(range(2008, 2022))
TILE_M = 15000
ORIGIN = (-106095.0, 1807575.0)
PC_STAC_ROOT = "https://planetarycomputer.microsoft.com/api/stac/v1"
#: CONUS (lon/lat) — only samples inside get CDL items.
CONUS = (-125.0, 24.0, -66.0, 50.0)


def _links(item_id: str) -> list[dict[str, str]]:
    base = f"{PC_STAC_ROOT}/collections/{COLLECTION_ID}"
    return [
        {"rel": "collection", "type": "application/json", "href": base},
        {"rel": "parent", "type": "application/json", "href": base},
        {"rel": "root", "type": "application/json", "href": f"{PC_STAC_ROOT}/"},
        {"rel": "self", "type": "application/geo+json", "href": f"{base}/items/{item_id}"},
    ]


def cdl_items(
    *, regions: list[Region], fixtures: Path, blobs: Path, blob_base: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """CDL items of the 15 km tiles under CONUS regions, and manifest entries (``{"id","type","years"}``)."""
    import json

    templates = {
        kind: json.loads(next((fixtures / TEMPLATES).glob(f"{kind}_*.json")).read_text())
        for kind in ("cropland", "cultivated", "frequency")
    }
    with rasterio.open(fixtures / CDL_FIXTURE) as ds:
        crop2021 = ds.read(1)
    with rasterio.open(fixtures / CULTIVATED_FIXTURE) as ds:
        cultivated = ds.read(1)
    to_albers = Transformer.from_crs(4326, 5070, always_xy=True)
    to_ll = Transformer.from_crs(5070, 4326, always_xy=True).transform
    items, entries, done = [], [], set()
    for region in regions:
        w, s, e, n = region.lonlat_bounds()
        if not (CONUS[0] <= w and e <= CONUS[2] and CONUS[1] <= s and n <= CONUS[3]):
            continue
        xs, ys = to_albers.transform([w, e, w, e], [s, s, n, n])
        for tx in range(
            math.floor((min(xs) - ORIGIN[0]) / TILE_M), math.floor((max(xs) - ORIGIN[0]) / TILE_M) + 1
        ):
            for ty in range(
                math.floor((min(ys) - ORIGIN[1]) / TILE_M), math.floor((max(ys) - ORIGIN[1]) / TILE_M) + 1
            ):
                xmin, ymin = int(ORIGIN[0] + tx * TILE_M), int(ORIGIN[1] + ty * TILE_M)
                if (xmin, ymin) in done:
                    continue
                done.add((xmin, ymin))
                transform = Affine(30.0, 0.0, xmin, 0.0, -30.0, ymin + TILE_M)
                geometry = geojson_polygon(
                    shp_transform(to_ll, box(xmin, ymin, xmin + TILE_M, ymin + TILE_M))
                )
                suffix = f"{xmin}_{ymin}_{TILE_M}"
                rolled = {y: np.roll(crop2021, 3 * (2021 - y), axis=1) for y in YEARS}

                def emit(kind: str, years: str, assets: dict[str, np.ndarray], files: dict[str, str]) -> None:
                    item_id = f"{kind}_{years}_{suffix}"
                    item = json.loads(json.dumps(templates[kind]))
                    item["id"] = item_id
                    item["collection"] = COLLECTION_ID
                    item["links"] = _links(item_id)
                    item["geometry"] = geometry
                    item["bbox"] = list(
                        shp_transform(to_ll, box(xmin, ymin, xmin + TILE_M, ymin + TILE_M)).bounds
                    )
                    first, last = years.split("-") if "-" in years else (years, years)
                    item["properties"].update(
                        {
                            "proj:transform": list(transform)[:6],
                            "proj:shape": [500, 500],
                            "start_datetime": f"{first}-01-01T00:00:00Z",
                            "end_datetime": f"{last}-12-31T23:59:59Z",
                        }
                    )
                    for key, data in assets.items():
                        rel = f"tiles/{xmin}/{ymin}/{files[key]}"
                        nodata = 255 if kind == "frequency" else 0
                        write_cog(path=blobs / rel, data=data, epsg=5070, transform=transform, nodata=nodata)
                        item["assets"][key]["href"] = f"{blob_base}/{rel}"
                    items.append(item)
                    entries.append({"id": item_id, "type": kind, "years": years, "tile": [xmin, ymin]})

                for year in YEARS:
                    hashed = (np.arange(500 * 500).reshape(500, 500) * 2654435761 + year) % 41
                    conf = np.where(rolled[year] > 0, 60 + hashed, 0).astype(np.uint8)
                    emit(
                        "cropland",
                        str(year),
                        {"cropland": rolled[year], "confidence": conf},
                        {
                            "cropland": f"{year}_30m_cdls_{suffix}.tif",
                            "confidence": f"{year}_30m_confidence_layer_{suffix}.tif",
                        },
                    )
                emit(
                    "cultivated",
                    "2021",
                    {"cultivated": cultivated},
                    {"cultivated": f"2021_cultivated_layer_{suffix}.tif"},
                )
                freq = {}
                for key, values in (
                    ("corn", (1,)),
                    ("cotton", (2,)),
                    ("soybeans", (5,)),
                    ("wheat", (22, 23, 24)),
                ):
                    count = sum(np.isin(rolled[y], values).astype(np.uint8) for y in YEARS)
                    freq[key] = np.where(crop2021 > 0, count, 255).astype(np.uint8)
                emit(
                    "frequency",
                    "2008-2021",
                    freq,
                    {k: f"{k}_frequency_2008-2021_{suffix}.tif" for k in freq},
                )
    return items, entries
