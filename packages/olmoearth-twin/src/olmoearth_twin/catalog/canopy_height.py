"""The WRI/Meta global canopy height map (not on PC), laid out like its AWS Open Data bucket.

Real: ``s3://dataforgood-fb-data/forests/v1/alsgedi_global_v6_float/chm/<quadkey>.tif`` — EPSG:3857
GeoTIFFs named by Bing quadkey, ~1.19 m pixels (the zoom-17 pixel of 256 px web tiles), uint8 canopy
height in metres, nodata 255 — and ``…/alsgedi_global_v6_float/tiles.geojson``, a FeatureCollection of
the tiles' lon/lat footprints with a ``tile`` (quadkey) property. The twin serves the same paths under
the blob server's public container ``dataforgood-fb-data/forests`` (S3 path-style: bucket, then the
first key segment) and writes only the quadkey tiles that touch the samples, at zoom :data:`ZOOM`
(1024 px each) instead of the real zoom 9 (65 536 px), to stay small. Each index feature also carries
the tile's ``href`` (relative to the container's base URL) for readers that do not build paths.

Pixels: smooth seeded tree-cover blobs (heights 3-35 m) over open ground (0), a water-like nodata
patch (255) in the first sample's tile so that readers meet nodata.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from pyproj import Transformer

from olmoearth_data.samples import Sample
from olmoearth_twin.catalog.cogs import write_cog

ACCOUNT, CONTAINER = "dataforgood-fb-data", "forests"
PREFIX = "v1/alsgedi_global_v6_float"
INDEX_PATH = f"{PREFIX}/tiles.geojson"
ZOOM = 15
TILE_PX = 1024
NODATA = 255
_HALF = 20037508.342789244  # half the EPSG:3857 world width, metres


def _tile_bounds(x: int, y: int, zoom: int) -> tuple[float, float, float, float]:
    size = 2 * _HALF / 2**zoom
    return (-_HALF + x * size, _HALF - (y + 1) * size, -_HALF + (x + 1) * size, _HALF - y * size)


def quadkey(*, x: int, y: int, zoom: int) -> str:
    """Bing Maps quadkey of web-mercator tile (x, y) at ``zoom`` (y counted from the north)."""
    return "".join(str(((x >> b) & 1) + 2 * ((y >> b) & 1)) for b in range(zoom - 1, -1, -1))


def _smooth(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    coarse = rng.random((cells + 1, cells + 1))
    idx = np.linspace(0, cells - 1e-9, size)
    i0, f = idx.astype(int), idx - idx.astype(int)
    rows = coarse[i0] * (1 - f)[:, None] + coarse[i0 + 1] * f[:, None]
    return rows[:, i0] * (1 - f)[None, :] + rows[:, i0 + 1] * f[None, :]


def canopy_tiles(*, samples: tuple[Sample, ...], blobs: Path, seed: int) -> dict[str, Any]:
    """Write the quadkey tiles touching ``samples`` under ``blobs`` (the container folder) and the
    index; return the index document."""
    to_merc = Transformer.from_crs(4326, 3857, always_xy=True).transform
    to_ll = Transformer.from_crs(3857, 4326, always_xy=True).transform
    size = 2 * _HALF / 2**ZOOM
    wanted: dict[tuple[int, int], int] = {}
    for n, sample in enumerate(samples):
        lon0, lat0, lon1, lat1 = sample.tile.polygon_lonlat().bounds
        mx0, my0 = to_merc(lon0, lat0)
        mx1, my1 = to_merc(lon1, lat1)
        for x in range(int((mx0 + _HALF) // size), int((mx1 + _HALF) // size) + 1):
            for y in range(int((_HALF - my1) // size), int((_HALF - my0) // size) + 1):
                wanted.setdefault((x, y), n)
    features = []
    for (x, y), n in sorted(wanted.items()):
        key = quadkey(x=x, y=y, zoom=ZOOM)
        x0, y0, x1, y1 = _tile_bounds(x, y, ZOOM)
        rng = np.random.default_rng([seed, int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)])
        cover = _smooth(rng, TILE_PX, 6)
        height = 3 + 32 * _smooth(rng, TILE_PX, 3)
        data = np.where(cover > 0.55, np.round(height), 0).astype(np.uint8)
        if n == 0 and (x, y) == min(k for k, v in wanted.items() if v == 0):
            data[: TILE_PX // 8, : TILE_PX // 8] = NODATA
        rel = f"{PREFIX}/chm/{key}.tif"
        write_cog(
            path=blobs / rel,
            data=data,
            epsg=3857,
            transform=Affine(size / TILE_PX, 0.0, x0, 0.0, -size / TILE_PX, y1),
            nodata=NODATA,
        )
        ring = [list(map(lambda v: round(v, 9), to_ll(px, py))) for px, py in _ring(x0, y0, x1, y1)]
        features.append(
            {
                "type": "Feature",
                "properties": {"tile": key, "href": rel},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    index = {"type": "FeatureCollection", "features": features}
    (blobs / INDEX_PATH).parent.mkdir(parents=True, exist_ok=True)
    (blobs / INDEX_PATH).write_text(json.dumps(index))
    return index


def _ring(x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float]]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]


def pixel_size_m() -> float:
    """The generated tiles' pixel size in EPSG:3857 metres (~1.19 m, as the real map)."""
    return 2 * _HALF / 2**ZOOM / TILE_PX
