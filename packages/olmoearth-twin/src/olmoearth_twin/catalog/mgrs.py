"""Sentinel-2 granules on the MGRS grid of a UTM zone.

A granule is the 109.8 km square whose top-left corner sits 20 m west and 20 m north of an MGRS 100 km
square's north-west corner, e.g. ``53NKG`` = ``[199980, 590220, 309780, 700020]`` in EPSG:32653 and
``29RKH`` = ``[199980, 2690220, 309780, 2800020]`` in EPSG:32629 (both as recorded on PC). Neighbouring
granules therefore overlap by 9.8 km. Letters follow the WGS 84 MGRS ("AA") scheme: column letters
cycle through three sets by zone, row letters through 20 letters offset by 5 in even zones; the
latitude band comes from the 100 km square's centre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from pyproj import Transformer
from shapely.geometry import Polygon, box

GRID_M = 100_000
GRANULE_M = 109_800
EDGE_M = 20
_BANDS = "CDEFGHJKLMNPQRSTUVWX"
_COLUMN_SETS = ("STUVWXYZ", "ABCDEFGH", "JKLMNPQR")  # indexed by zone % 3
_ROWS = "ABCDEFGHJKLMNPQRSTUV"


def utm_zone(*, epsg: int) -> tuple[int, bool]:
    """(zone number, southern hemisphere?) of a WGS 84 UTM EPSG code (326zz / 327zz)."""
    if 32601 <= epsg <= 32660:
        return epsg - 32600, False
    if 32701 <= epsg <= 32760:
        return epsg - 32700, True
    raise ValueError(f"EPSG:{epsg} is not a WGS 84 UTM zone; the Sentinel-2 twin only covers UTM tiles")


@lru_cache(maxsize=64)
def _to_lonlat(epsg: int) -> Transformer:
    return Transformer.from_crs(epsg, 4326, always_xy=True)


@dataclass(frozen=True, order=True)
class Granule:
    """MGRS 100 km square ``(col, row)`` = (easting // 100 km, northing // 100 km) in a UTM zone."""

    epsg: int
    col: int
    row: int

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of the 109.8 km granule, metres in ``epsg``."""
        xmin = self.col * GRID_M - EDGE_M
        ymax = (self.row + 1) * GRID_M + EDGE_M
        return (float(xmin), float(ymax - GRANULE_M), float(xmin + GRANULE_M), float(ymax))

    def polygon(self) -> Polygon:
        return box(*self.bounds)

    @property
    def mgrs(self) -> str:
        """MGRS tile name without the leading ``T``, e.g. ``29RKH``."""
        zone, _ = utm_zone(epsg=self.epsg)
        _, lat = _to_lonlat(self.epsg).transform(
            self.col * GRID_M + GRID_M / 2, self.row * GRID_M + GRID_M / 2
        )
        band = _BANDS[min(max(math.floor((lat + 80.0) / 8.0), 0), len(_BANDS) - 1)]
        column = _COLUMN_SETS[zone % 3][(self.col - 1) % 8]
        row = _ROWS[(self.row + (5 if zone % 2 == 0 else 0)) % 20]
        return f"{zone:02d}{band}{column}{row}"


def granules_intersecting(*, epsg: int, bounds: tuple[float, float, float, float]) -> list[Granule]:
    """Granules of ``epsg`` whose footprint overlaps ``bounds`` (xmin, ymin, xmax, ymax) with area > 0."""
    utm_zone(epsg=epsg)
    xmin, ymin, xmax, ymax = bounds
    region = box(*bounds)
    out = []
    for col in range(
        math.floor((xmin + EDGE_M - GRANULE_M) / GRID_M), math.floor((xmax + EDGE_M) / GRID_M) + 1
    ):
        for row in range(math.floor((ymin - EDGE_M) / GRID_M) - 1, math.floor((ymax - EDGE_M) / GRID_M) + 1):
            granule = Granule(epsg, col, row)
            if 1 <= col <= 8 and granule.polygon().intersection(region).area > 0:
                out.append(granule)
    return sorted(out)
