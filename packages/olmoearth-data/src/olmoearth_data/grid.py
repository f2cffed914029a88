"""The UTM tile grid: 2560 m square cells per UTM zone (UPS near the poles).

A tile is ``(epsg, col, row)`` with ``col = floor(x / 2560)`` and ``row = floor(-y / 2560)`` in the
zone's projected metres, so it covers x ∈ [2560·col, 2560·(col+1)) and y ∈ (−2560·(row+1), −2560·row]
(``docs/data.md`` §2). Its id is ``EPSG:32610_248_-2176``. Every bandset has its own
pixel grid over the same tile: 1024/256/128/64 px at 2.5/10/20/40 m.

Deviation from the reference: the reference first snaps the point to a 0.625 m pixel with ``int()``
(truncation toward zero) before dividing; we floor the projected coordinate directly. The two differ
only for points within 0.625 m of a tile edge.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from affine import Affine
from odc.geo.geobox import GeoBox
from pyproj import CRS, Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from shapely.affinity import translate
from shapely.geometry import MultiPolygon, Polygon, box

from olmoearth_data.modalities import TILE_SIZE_M

UPS_NORTH_EPSG = 5041
UPS_SOUTH_EPSG = 5042
_TILE_ID = re.compile(r"^EPSG:(\d+)_(-?\d+)_(-?\d+)$")


def is_grid_epsg(epsg: int) -> bool:
    """Whether ``epsg`` is one of the grid's CRSs: a WGS 84 UTM zone (326xx/327xx, 01-60) or UPS."""
    return epsg in (UPS_NORTH_EPSG, UPS_SOUTH_EPSG) or (epsg // 100 in (326, 327) and 1 <= epsg % 100 <= 60)


def utm_epsg(*, lon: float, lat: float) -> int:
    """EPSG code of the CRS a point's tile lives in.

    UPS North (5041) above 84° − 1e-4, UPS South (5042) below −80° + 1e-4, else the first WGS 84 UTM
    zone pyproj's database returns for the point (326xx north, 327xx south; no Norway/Svalbard
    exceptions; on a zone border the first returned zone wins), as the reference does.
    """
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise ValueError(
            f"lon/lat out of range: ({lon}, {lat}); expected lon in [-180, 180], lat in [-90, 90]"
        )
    if lat > 84.0 - 1e-4:
        return UPS_NORTH_EPSG
    if lat < -80.0 + 1e-4:
        return UPS_SOUTH_EPSG
    zone_f = (lon + 180.0) / 6.0
    if lat != 0.0 and abs(zone_f - round(zone_f)) > 1e-9:
        # Inside a zone the answer is unambiguous; only borders need the database's tie-break.
        return (32600 if lat > 0 else 32700) + min(math.floor(zone_f) + 1, 60)
    return _utm_epsg_cached(lon, lat)


@lru_cache(maxsize=65536)
def _utm_epsg_cached(lon: float, lat: float) -> int:
    infos = query_utm_crs_info(
        datum_name="WGS 84",
        area_of_interest=AreaOfInterest(west_lon_degree=lon, south_lat_degree=lat, east_lon_degree=lon,
                                        north_lat_degree=lat),
    )  # fmt: skip
    for info in infos:
        if info.auth_name == "EPSG" and re.fullmatch(r"32[67]\d\d", info.code):
            return int(info.code)
    raise ValueError(f"pyproj found no WGS 84 UTM zone for ({lon}, {lat})")


@lru_cache(maxsize=256)
def _to_projected(epsg: int) -> Transformer:
    return Transformer.from_crs(4326, epsg, always_xy=True)


@lru_cache(maxsize=256)
def _to_lonlat(epsg: int) -> Transformer:
    return Transformer.from_crs(epsg, 4326, always_xy=True)


@dataclass(frozen=True, order=True)
class Tile:
    """One 2560 m grid cell. ``col``/``row`` are tile indices (not pixels); rows count downward."""

    epsg: int
    col: int
    row: int

    @property
    def id(self) -> str:
        """Reference-style id, e.g. ``EPSG:32610_248_-2176``."""
        return f"EPSG:{self.epsg}_{self.col}_{self.row}"

    @classmethod
    def from_id(cls, tile_id: str) -> Tile:
        """Parse ``EPSG:<code>_<col>_<row>``."""
        m = _TILE_ID.match(tile_id)
        if not m:
            raise ValueError(f"not a tile id: {tile_id!r}; expected e.g. 'EPSG:32610_248_-2176'")
        epsg = int(m.group(1))
        if not is_grid_epsg(epsg):
            # e.g. EPSG:4326 would parse into a 2560-"degree" cell: a silently wrong answer.
            raise ValueError(
                f"not a tile id: {tile_id!r}; the grid's CRSs are WGS 84 UTM (EPSG:32601-32660, "
                f"32701-32760) and UPS (EPSG:{UPS_NORTH_EPSG}, {UPS_SOUTH_EPSG}), got EPSG:{epsg}"
            )
        return cls(epsg, int(m.group(2)), int(m.group(3)))

    @property
    def crs(self) -> CRS:
        return CRS.from_epsg(self.epsg)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in the tile's CRS, metres."""
        xmin = TILE_SIZE_M * self.col
        ymax = -TILE_SIZE_M * self.row
        return (xmin, ymax - TILE_SIZE_M, xmin + TILE_SIZE_M, ymax)

    def transform(self, *, pixel_size_m: float) -> Affine:
        """Affine transform of the tile's pixel grid at ``pixel_size_m`` (north-up, origin top-left)."""
        xmin, _, _, ymax = self.bounds
        return Affine(pixel_size_m, 0.0, xmin, 0.0, -pixel_size_m, ymax)

    def shape(self, *, pixel_size_m: float) -> tuple[int, int]:
        """(rows, cols) of the pixel grid at ``pixel_size_m``, e.g. (128, 128) at 20 m."""
        n = TILE_SIZE_M / pixel_size_m
        if not float(n).is_integer():
            raise ValueError(f"pixel size {pixel_size_m} m does not divide the {TILE_SIZE_M:g} m tile")
        return (int(n), int(n))

    def geobox(self, *, pixel_size_m: float) -> GeoBox:
        """odc-geo GeoBox of the tile at ``pixel_size_m`` (what odc-stac loads into)."""
        return GeoBox(self.shape(pixel_size_m=pixel_size_m), self.transform(pixel_size_m=pixel_size_m),
                      f"EPSG:{self.epsg}")  # fmt: skip

    def polygon(self) -> Polygon:
        """The tile as a polygon in its own CRS."""
        return box(*self.bounds)

    def polygon_lonlat(self, *, densify: int = 8) -> Polygon | MultiPolygon:
        """The tile's outline in lon/lat degrees (edges densified so the curved outline is followed).

        A valid geometry whose longitudes lie in [−180, 180]: a Polygon, or — for a tile straddling the
        ±180° meridian (Fiji, Chukotka, the Aleutians) — a MultiPolygon of the two sides, split at the
        meridian (the outline is unwrapped around the tile centre first, so no part spans the globe).
        A tile holding a pole is the cap poleward of its outline. This is what STAC ``intersects``
        searches, tile-index lookups and the sample table use.
        """
        poly = self.polygon().segmentize(TILE_SIZE_M / densify)
        xy = np.asarray(poly.exterior.coords)
        lon, lat = _to_lonlat(self.epsg).transform(xy[:, 0], xy[:, 1])
        lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
        pole = {UPS_NORTH_EPSG: 90.0, UPS_SOUTH_EPSG: -90.0}.get(self.epsg)  # only UPS tiles hold a pole
        if pole is not None and self.contains_lonlat(lon=0.0, lat=pole):
            return _polar_cap(lon, lat, pole=pole)
        centre = self.centre_lonlat[0]
        lon = centre + (lon - centre + 180.0) % 360.0 - 180.0  # within ±180° of the centre: no wrap
        return split_at_antimeridian(Polygon(np.column_stack([lon, lat])))

    @property
    def centre_xy(self) -> tuple[float, float]:
        xmin, ymin, xmax, ymax = self.bounds
        return ((xmin + xmax) / 2, (ymin + ymax) / 2)

    @property
    def centre_lonlat(self) -> tuple[float, float]:
        """(lon, lat) of the tile centre."""
        lon, lat = _to_lonlat(self.epsg).transform(*self.centre_xy)
        return (float(lon), float(lat))

    def contains_lonlat(self, *, lon: float, lat: float) -> bool:
        x, y = _to_projected(self.epsg).transform(lon, lat)
        xmin, ymin, xmax, ymax = self.bounds
        return xmin <= x < xmax and ymin < y <= ymax

    def coarse_cell(self, *, factor: int = 16) -> tuple[int, int, int]:
        """(epsg, col, row) of the coarser cell (factor × 2560 m; 16 → 40.96 km) holding this tile."""
        return (self.epsg, math.floor(self.col / factor), math.floor(self.row / factor))


def tile_for_xy(*, epsg: int, x: float, y: float) -> Tile:
    """Tile holding projected point (x, y) in ``epsg``."""
    return Tile(epsg, math.floor(x / TILE_SIZE_M), math.floor(-y / TILE_SIZE_M))


def tile_for_lonlat(*, lon: float, lat: float) -> Tile:
    """Tile holding a WGS 84 point, in the CRS chosen by :func:`utm_epsg`."""
    epsg = utm_epsg(lon=lon, lat=lat)
    x, y = _to_projected(epsg).transform(lon, lat)
    return tile_for_xy(epsg=epsg, x=float(x), y=float(y))


def tiles_for_lonlats(*, lon: np.ndarray, lat: np.ndarray) -> list[Tile]:
    """Vectorised :func:`tile_for_lonlat` for float64 arrays of equal shape ``[N]``.

    Points are grouped by CRS and projected one group at a time, which is what makes millions of
    points (the full sampling input) fast.
    """
    lon = np.asarray(lon, dtype=np.float64).ravel()
    lat = np.asarray(lat, dtype=np.float64).ravel()
    if lon.shape != lat.shape:
        raise ValueError(f"lon and lat must have the same shape, got {lon.shape} and {lat.shape}")
    epsgs = np.array([utm_epsg(lon=float(a), lat=float(b)) for a, b in zip(lon, lat)], dtype=np.int64)
    cols = np.empty(len(lon), dtype=np.int64)
    rows = np.empty(len(lon), dtype=np.int64)
    for epsg in np.unique(epsgs):
        sel = epsgs == epsg
        x, y = _to_projected(int(epsg)).transform(lon[sel], lat[sel])
        cols[sel] = np.floor(np.asarray(x) / TILE_SIZE_M).astype(np.int64)
        rows[sel] = np.floor(-np.asarray(y) / TILE_SIZE_M).astype(np.int64)
    return [Tile(int(e), int(c), int(r)) for e, c, r in zip(epsgs, cols, rows)]


def split_at_antimeridian(poly: Polygon) -> Polygon | MultiPolygon:
    """``poly`` (lon/lat degrees, longitudes continuous, possibly beyond ±180°) folded into [−180, 180].

    Returned unchanged when it lies inside; otherwise the parts beyond ±180° are cut off at the
    meridian and shifted by ∓360°, giving a valid MultiPolygon (GeoJSON's antimeridian cutting, RFC
    7946 §3.1.9).
    """
    west, _, east, _ = poly.bounds
    if west >= -180.0 and east <= 180.0:
        return poly
    parts = []
    for shift in (-360.0, 0.0, 360.0):  # the world copy at lon + shift, brought back into [-180, 180]
        piece = poly.intersection(box(-180.0 - shift, -90.0, 180.0 - shift, 90.0))
        if not piece.is_empty and piece.area > 0:
            piece = translate(piece, xoff=shift)
            parts.extend(getattr(piece, "geoms", [piece]))
    polygons = [p for p in parts if isinstance(p, Polygon) and p.area > 0]
    return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


def _polar_cap(lon: np.ndarray, lat: np.ndarray, *, pole: float) -> Polygon:
    """The lon/lat region poleward of a closed outline around ``pole`` (±90°), as one Polygon.

    The outline's points, sorted by longitude, bound the cap; it is closed along ±180° and the pole.
    """
    lon = ((lon[:-1] + 180.0) % 360.0) - 180.0
    lat = lat[:-1]
    order = np.argsort(lon)
    lon, lat = lon[order], lat[order]
    # the outline's latitude at the ±180° seam, interpolated between the last and first points
    span = lon[0] + 360.0 - lon[-1]
    seam = lat[-1] + (lat[0] - lat[-1]) * ((180.0 - lon[-1]) / span if span > 0 else 0.5)
    ring = [(-180.0, seam), *zip(lon.tolist(), lat.tolist()), (180.0, seam), (180.0, pole), (-180.0, pole)]
    return Polygon(ring)
