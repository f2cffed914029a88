"""Regions: the sample tiles one generated item's COG covers (non-S2 collections).

Samples in the same projected CRS with the same centre date form one region; its COGs cover the union
of the tiles' bounds plus a margin, snapped outwards to the collection's pixel grid. Real products cover
far more (a 250 km S1 swath, a 185 km Landsat scene); the twin writes only this crop and says so in the
item's ``proj:*`` fields, like the S2 generator.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import Polygon, mapping
from shapely.ops import unary_union

from olmoearth_data.samples import Sample

MARGIN_M = 256.0


@dataclass(frozen=True)
class Region:
    """Samples sharing a CRS and centre date; ``bounds`` in metres of ``EPSG:epsg`` (with margin)."""

    key: str
    epsg: int
    samples: tuple[Sample, ...]
    bounds: tuple[float, float, float, float]

    def snapped(self, *, res: float) -> tuple[float, float, float, float]:
        """``bounds`` snapped outwards to multiples of ``res`` (metres)."""
        x0, y0, x1, y1 = self.bounds
        return (
            math.floor(x0 / res) * res,
            math.floor(y0 / res) * res,
            math.ceil(x1 / res) * res,
            math.ceil(y1 / res) * res,
        )

    def lonlat_polygon(self) -> Polygon:
        """Union of the sample tiles in lon/lat (no margin)."""
        return unary_union([s.tile.polygon_lonlat() for s in self.samples])

    def lonlat_bounds(self, *, margin_m: float = MARGIN_M) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees of ``bounds`` grown by ``margin_m`` beyond the tiles."""
        x0, y0, x1, y1 = self.bounds
        grow = margin_m - MARGIN_M
        to_ll = Transformer.from_crs(self.epsg, 4326, always_xy=True)
        xs, ys = to_ll.transform(
            [x0 - grow, x1 + grow, x0 - grow, x1 + grow], [y0 - grow, y0 - grow, y1 + grow, y1 + grow]
        )
        return min(xs), min(ys), max(xs), max(ys)

    def seed(self) -> int:
        return int.from_bytes(hashlib.sha256(self.key.encode()).digest()[:8], "little")


def group_regions(*, samples: tuple[Sample, ...] | list[Sample]) -> list[Region]:
    """Regions of ``samples`` in first-seen order (keyed ``<epsg>_<centre>``)."""
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        groups.setdefault(f"{sample.tile.epsg}_{sample.centre.isoformat()}", []).append(sample)
    regions = []
    for key, members in groups.items():
        boxes = [m.tile.bounds for m in members]
        bounds = (
            min(b[0] for b in boxes) - MARGIN_M,
            min(b[1] for b in boxes) - MARGIN_M,
            max(b[2] for b in boxes) + MARGIN_M,
            max(b[3] for b in boxes) + MARGIN_M,
        )
        regions.append(Region(key=key, epsg=members[0].tile.epsg, samples=tuple(members), bounds=bounds))
    return regions


def geojson_polygon(polygon: Polygon) -> dict:
    """GeoJSON geometry dict of a shapely polygon (coordinates as lists)."""
    geom = mapping(polygon)
    return {"type": geom["type"], "coordinates": [[list(p) for p in ring] for ring in geom["coordinates"]]}


def shp_transform(fn: object, geom: shapely.Geometry) -> shapely.Geometry:
    """``geom`` with coordinates mapped by ``fn(xs, ys) -> (xs, ys)`` (e.g. a pyproj ``transform``)."""
    return shapely.transform(geom, lambda xy: np.column_stack(fn(xy[:, 0], xy[:, 1])))  # type: ignore[operator]
