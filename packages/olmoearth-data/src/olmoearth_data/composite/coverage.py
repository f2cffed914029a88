"""Greedy coverage selection of the items of one period (data spec §4.2 step 3).

Walk the ordered items; take an item when it overlaps the still-uncovered part of the tile by at
least 10 % of the item's area or 10 % of the uncovered area; stop once less than 1 % of the tile is
uncovered. The geometry test runs in the tile's own CRS (metres), where areas mean something.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import shape

from olmoearth_data.grid import Tile

MIN_OVERLAP_FRACTION = 0.10
STOP_UNCOVERED_FRACTION = 0.01


@lru_cache(maxsize=256)
def _lonlat_to(epsg: int) -> Transformer:
    return Transformer.from_crs(4326, epsg, always_xy=True)


def footprint_in_tile_crs(item: dict[str, Any], *, tile: Tile) -> shapely.Geometry | None:
    """The item's footprint (its GeoJSON geometry, lon/lat) in the tile's CRS; None if it has none."""
    geometry = item.get("geometry")
    if not geometry:
        return None
    to_tile = _lonlat_to(tile.epsg)
    geom = shape(geometry)
    projected = shapely.transform(geom, lambda xy: np.column_stack(to_tile.transform(xy[:, 0], xy[:, 1])))
    return shapely.make_valid(projected)


def select_covering(
    items: Sequence[dict[str, Any]],
    *,
    tile: Tile,
    min_overlap: float = MIN_OVERLAP_FRACTION,
    stop_uncovered: float = STOP_UNCOVERED_FRACTION,
) -> list[dict[str, Any]]:
    """The items (in the given order) that a greedy single-coverage mosaic of ``tile`` uses.

    Items without a geometry are kept (nothing is known about their footprint; the per-pixel merge
    sorts it out).
    """
    tile_poly = tile.polygon()
    uncovered = tile_poly
    selected: list[dict[str, Any]] = []
    for item in items:
        footprint = footprint_in_tile_crs(item, tile=tile)
        if footprint is None:
            selected.append(item)
            continue
        overlap = footprint.intersection(uncovered).area
        if overlap <= 0:
            continue
        if overlap >= min_overlap * footprint.area or overlap >= min_overlap * uncovered.area:
            selected.append(item)
            uncovered = uncovered.difference(footprint)
            if uncovered.area < stop_uncovered * tile_poly.area:
                break
    return selected
