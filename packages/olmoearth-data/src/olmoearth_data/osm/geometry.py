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


def utm_epsgs(*, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Vectorised :func:`~olmoearth_data.grid.utm_epsg` (int64 ``[N]``), same answer point by point.

    Points strictly inside a zone (the common case) get the zone arithmetically; polar caps, zone
    borders and the equator go through the scalar function (its database tie-break), once per point.
    """
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    bad = ~((lon >= -180.0) & (lon <= 180.0) & (lat >= -90.0) & (lat <= 90.0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        utm_epsg(lon=float(lon[i]), lat=float(lat[i]))  # raises the scalar function's error
    zone_f = (lon + 180.0) / 6.0
    polar = (lat > 84.0 - 1e-4) | (lat < -80.0 + 1e-4)
    inside = ~polar & (lat != 0.0) & (np.abs(zone_f - np.round(zone_f)) > 1e-9)
    out = np.where(lat > 0, 32600, 32700) + np.minimum(np.floor(zone_f).astype(np.int64) + 1, 60)
    for i in np.flatnonzero(~inside):
        out[i] = utm_epsg(lon=float(lon[i]), lat=float(lat[i]))
    return out.astype(np.int64)


def tiles_for_geometries(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised :func:`tiles_for_geometry` over an array of lon/lat geometries.

    Returns parallel int64 arrays ``(geometry index, epsg, col, row)``, one entry per (geometry, tile),
    ordered as the scalar function lists them: by geometry, then zone (ascending), then column, row.
    Projection is done once per zone for all the geometries touching it; only geometries spanning
    several tiles are tested against tile squares (one vectorised ``intersects``).
    """
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    empty = np.zeros(0, dtype=np.int64)
    if n == 0:
        return empty, empty, empty, empty
    bounds = shapely.bounds(geoms)
    corners = np.stack(
        [utm_epsgs(lon=bounds[:, ix], lat=bounds[:, iy]) for ix in (0, 2) for iy in (1, 3)], axis=1
    )
    # (geometry, zone) pairs, ascending; almost always one zone per geometry
    first = corners[:, 0]
    mixed = (corners != first[:, None]).any(axis=1)
    pairs = np.column_stack([np.arange(n), first])[~mixed]
    if mixed.any():
        extra = [(i, z) for i in np.flatnonzero(mixed) for z in sorted(set(corners[i].tolist()))]
        pairs = np.concatenate([pairs, np.asarray(extra, dtype=np.int64).reshape(-1, 2)])
        pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
    coords, cidx = shapely.get_coordinates(geoms, return_index=True)
    per_geom = np.bincount(cidx, minlength=n)
    out_g, out_e, out_c, out_r = [], [], [], []
    for epsg in np.unique(pairs[:, 1]):
        g = pairs[pairs[:, 1] == epsg, 0]  # ascending
        counts = per_geom[g]
        selected = np.zeros(n, dtype=bool)
        selected[g] = True
        take = np.flatnonzero(selected[cidx])  # coordinates of g, in g's order
        x, y = _to_projected(int(epsg)).transform(coords[take, 0], coords[take, 1])
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        seg = np.concatenate([[0], np.cumsum(counts)[:-1]])
        c0 = np.floor(np.minimum.reduceat(x, seg) / TILE_SIZE_M).astype(np.int64)
        c1 = np.floor(np.maximum.reduceat(x, seg) / TILE_SIZE_M).astype(np.int64)
        r0 = np.floor(-np.maximum.reduceat(y, seg) / TILE_SIZE_M).astype(np.int64)
        r1 = np.floor(-np.minimum.reduceat(y, seg) / TILE_SIZE_M).astype(np.int64)
        single = (c0 == c1) & (r0 == r1)
        out_g.append(g[single])
        out_c.append(c0[single])
        out_r.append(r0[single])
        out_e.append(np.full(int(single.sum()), epsg, dtype=np.int64))
        multi = np.flatnonzero(~single)
        if len(multi):
            # projected copies of the multi-tile geometries, then every candidate square of each
            is_multi = ~single
            sub_take = is_multi[np.repeat(np.arange(len(g)), counts)]
            # set_coordinates replaces the entries of this fancy-indexed copy, not ``geoms``
            projected = shapely.set_coordinates(geoms[g[multi]], np.column_stack([x[sub_take], y[sub_take]]))
            nc, nr = c1[multi] - c0[multi] + 1, r1[multi] - r0[multi] + 1
            per = nc * nr
            k = np.repeat(np.arange(len(multi)), per)
            local = np.arange(per.sum()) - np.repeat(np.cumsum(per) - per, per)
            col = c0[multi][k] + local // nr[k]
            row = r0[multi][k] + local % nr[k]
            squares = shapely.box(
                TILE_SIZE_M * col, -TILE_SIZE_M * row - TILE_SIZE_M, TILE_SIZE_M * col + TILE_SIZE_M,
                -TILE_SIZE_M * row,
            )  # fmt: skip
            shapely.prepare(projected)
            hit = shapely.intersects(projected[k], squares)
            out_g.append(g[multi][k[hit]])
            out_c.append(col[hit])
            out_r.append(row[hit])
            out_e.append(np.full(int(hit.sum()), epsg, dtype=np.int64))
    gi, ep, co, ro = (np.concatenate(a) for a in (out_g, out_e, out_c, out_r))
    order = np.lexsort((ro, co, ep, gi))
    return gi[order], ep[order], co[order], ro[order]
