"""Regions: the sample tiles one generated item's COG covers (non-S2 collections).

Samples in the same projected CRS with the same centre date form one region, as long as their tiles fit
in a :data:`MAX_SIDE_M` square (a UTM zone holds places thousands of km apart: New York and Lima share
EPSG:32618); farther samples start a region of their own. A region's COGs cover the union of its tiles'
bounds plus a margin, snapped outwards to the collection's pixel grid. Real products cover
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
#: Largest side of a region's tiles' bounding box, metres (a real S1 swath is ~250 km wide).
MAX_SIDE_M = 100_000.0


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
    """Regions of ``samples`` in first-seen order, keyed ``<epsg>_<centre>`` (the first region of a CRS
    and date) or ``<epsg>_<centre>_<n>`` (the n-th farther one)."""
    groups: dict[str, list[list[Sample]]] = {}
    for sample in samples:
        clusters = groups.setdefault(f"{sample.tile.epsg}_{sample.centre.isoformat()}", [])
        for members in clusters:
            x0, y0, x1, y1 = _union([*members, sample])
            if max(x1 - x0, y1 - y0) <= MAX_SIDE_M:
                members.append(sample)
                break
        else:
            clusters.append([sample])
    regions = []
    for key, clusters in groups.items():
        for n, members in enumerate(clusters):
            x0, y0, x1, y1 = _union(members)
            bounds = (x0 - MARGIN_M, y0 - MARGIN_M, x1 + MARGIN_M, y1 + MARGIN_M)
            regions.append(
                Region(key=key if n == 0 else f"{key}_{n}", epsg=members[0].tile.epsg,
                       samples=tuple(members), bounds=bounds)
            )  # fmt: skip
    return regions


def _union(samples: list[Sample]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = np.array([s.tile.bounds for s in samples]).T
    return float(x0.min()), float(y0.min()), float(x1.max()), float(y1.max())


def geojson_polygon(polygon: Polygon) -> dict:
    """GeoJSON geometry dict of a shapely polygon (coordinates as lists)."""
    geom = mapping(polygon)
    return {"type": geom["type"], "coordinates": [[list(p) for p in ring] for ring in geom["coordinates"]]}


def shp_transform(fn: object, geom: shapely.Geometry) -> shapely.Geometry:
    """``geom`` with coordinates mapped by ``fn(xs, ys) -> (xs, ys)`` (e.g. a pyproj ``transform``)."""
    return shapely.transform(geom, lambda xy: np.column_stack(fn(xy[:, 0], xy[:, 1])))  # type: ignore[operator]
