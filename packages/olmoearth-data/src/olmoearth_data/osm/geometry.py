"""Which 2560 m tiles a lon/lat geometry touches (used to partition raster features by tile)."""

from __future__ import annotations

import math

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from olmoearth_data.grid import Tile, _to_projected, utm_epsg
from olmoearth_data.modalities import TILE_SIZE_M


def tiles_for_geometry(*, geom: BaseGeometry) -> list[Tile]:
    """Tiles whose square intersects ``geom`` (lon/lat, EPSG:4326 x=lon y=lat).

    Candidate zones are those of the bbox corners (so a feature crossing a UTM zone border lands in the
    tiles of both zones); inside a zone the vertex extent gives a col/row range and, when it spans more
    than one tile, each candidate is tested for intersection with the projected geometry.
    """
    minx, miny, maxx, maxy = geom.bounds
    epsgs = sorted({utm_epsg(lon=x, lat=y) for x in (minx, maxx) for y in (miny, maxy)})
    tiles: list[Tile] = []
    coords = shapely.get_coordinates(geom)
    for epsg in epsgs:
        x, y = _to_projected(epsg).transform(coords[:, 0], coords[:, 1])
        x, y = np.asarray(x), np.asarray(y)
        c0, c1 = math.floor(x.min() / TILE_SIZE_M), math.floor(x.max() / TILE_SIZE_M)
        r0, r1 = math.floor(-y.max() / TILE_SIZE_M), math.floor(-y.min() / TILE_SIZE_M)
        if c0 == c1 and r0 == r1:
            tiles.append(Tile(epsg, c0, r0))
            continue
        xy = np.column_stack([x, y])
        projected = shapely.transform(geom, lambda _c, xy=xy: xy)
        shapely.prepare(projected)
        for col in range(c0, c1 + 1):
            for row in range(r0, r1 + 1):
                t = Tile(epsg, col, row)
                if projected.intersects(t.polygon()):
                    tiles.append(t)
    return tiles
