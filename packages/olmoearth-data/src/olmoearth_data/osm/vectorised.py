"""Per-batch (not per-element) matching, geometry and row building for the OSM pass.

Input: one batch of elements of one type as arrays (ids, coordinates, a :class:`TagTable`); output:
Arrow tables of sampling points and per-tile raster rows, the same rows the reference per-element rules
give (module doc of :mod:`olmoearth_data.osm.extract`):

* categories: ``sampling_matrix``/``raster_matrix`` evaluate each rule once per batch;
* geometry: shapely 2 array constructors (``linestrings``/``linearrings`` with ``indices``), array
  ``centroid``/``is_valid``/``point_on_surface``/``to_wkb``;
* tiles: :func:`~olmoearth_data.osm.geometry.tiles_for_geometries` (one projection per UTM zone);
* a way's sampling point: the splitmix64 pick of :func:`pick_index`, vectorised in uint64.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import shapely

from olmoearth_data.osm.categories import (
    RASTER_CATEGORIES,
    SAMPLING_CATEGORY_NAMES,
    GeometryKind,
    raster_matrix,
    sampling_matrix,
)
from olmoearth_data.osm.geometry import tiles_for_geometries
from olmoearth_data.osm.tagtable import TagTable

POINTS_SCHEMA = pa.schema(
    [("category", pa.string()), ("osm_type", pa.string()), ("osm_id", pa.int64()),
     ("lon", pa.float64()), ("lat", pa.float64())]
)  # fmt: skip
RASTER_SCHEMA = pa.schema(
    [("tile_id", pa.string()), ("category", pa.string()), ("osm_type", pa.string()),
     ("osm_id", pa.int64()), ("tag", pa.string()), ("geometry", pa.binary())]
)  # fmt: skip

_SAMPLING_NAMES = np.array(SAMPLING_CATEGORY_NAMES, dtype=object)
_RASTER_NAMES = np.array([c.name for c in RASTER_CATEGORIES], dtype=object)
# geometry slot per raster category. Ways: 0 centroid of the line, 1 line, 2 polygon (a river way is
# a line; only relations become river polygons). Relation areas: 0 representative point, 1 the area.
_WAY_SLOT = np.array(
    [0 if c.geometry is GeometryKind.POINT else 2 if c.geometry is GeometryKind.POLYGON else 1
     for c in RASTER_CATEGORIES]
)  # fmt: skip
_AREA_SLOT = np.array([0 if c.geometry is GeometryKind.POINT else 1 for c in RASTER_CATEGORIES])
_COPIED = [(j, c.copied_tag) for j, c in enumerate(RASTER_CATEGORIES) if c.copied_tag]
_N_RASTER = len(RASTER_CATEGORIES)
_M64 = 0xFFFFFFFFFFFFFFFF


@dataclass
class ExtractStats:
    """Counts of one pass. ``features_found`` counts elements per sampling category."""

    #: elements passing the C++ key filter (handed to the vectorised stage) plus assembled relation areas
    tagged_elements: int = 0
    features_found: Counter[str] = field(default_factory=Counter)
    raster_features: Counter[str] = field(default_factory=Counter)
    relations_unassembled: int = 0
    ways_unlocated: int = 0

    def to_dict(self) -> dict[str, object]:
        return {"tagged_elements": self.tagged_elements, "features_found": dict(self.features_found),
                "raster_features": dict(self.raster_features),
                "relations_unassembled": self.relations_unassembled,
                "ways_unlocated": self.ways_unlocated}  # fmt: skip

    def add(self, other: ExtractStats) -> None:
        self.tagged_elements += other.tagged_elements
        self.features_found.update(other.features_found)
        self.raster_features.update(other.raster_features)
        self.relations_unassembled += other.relations_unassembled
        self.ways_unlocated += other.ways_unlocated


@dataclass
class BatchRows:
    """Rows of one batch: ``points`` (POINTS_SCHEMA) and ``raster`` (RASTER_SCHEMA + int32 ``bucket``)."""

    points: pa.Table
    raster: pa.Table


def pick_index(ids: np.ndarray, seed: int, n: np.ndarray) -> np.ndarray:
    """Deterministic index in ``[0, n)`` per (id, seed): the splitmix64 finaliser, vectorised."""
    with np.errstate(over="ignore"):
        z = np.asarray(ids, dtype=np.int64).view(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = z + np.uint64((seed * 0xBF58476D1CE4E5B9 + 1) & _M64)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.asarray(n, dtype=np.uint64)).astype(np.int64)


def _empty_raster() -> pa.Table:
    return RASTER_SCHEMA.append(pa.field("bucket", pa.int32())).empty_table()


def _points(osm_type: str, ids: np.ndarray, S: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> pa.Table:
    e, c = np.nonzero(S)
    return pa.table(
        {"category": pa.array(_SAMPLING_NAMES[c], type=pa.string()),
         "osm_type": pa.array(np.full(len(e), osm_type, dtype=object), type=pa.string()),
         "osm_id": pa.array(ids[e], type=pa.int64()), "lon": pa.array(lon[e], type=pa.float64()),
         "lat": pa.array(lat[e], type=pa.float64())},
        schema=POINTS_SCHEMA,
    )  # fmt: skip


def _raster(
    osm_type: str, ids: np.ndarray, R: np.ndarray, slot_of: np.ndarray, geoms: list[np.ndarray],
    tags: TagTable, rows: np.ndarray, buckets: int,
) -> pa.Table:  # fmt: skip
    """Rows (element × raster category × tile) for the True entries of ``R`` (every one has a geometry).

    ``geoms[s]`` holds slot ``s`` geometries of the batch's kept elements; ``rows`` maps kept elements
    to their index in ``tags``. Row order: element, then band, then tile (the reference's order).
    """
    e, c = np.nonzero(R)
    if len(e) == 0:
        return _empty_raster()
    n = len(ids)
    key = slot_of[c] * n + e
    ukey, inv = np.unique(key, return_inverse=True)
    ugeom = np.empty(len(ukey), dtype=object)
    for s, arr in enumerate(geoms):
        sel = ukey // n == s
        ugeom[sel] = arr[ukey[sel] % n]
    gi, ep, co, ro = tiles_for_geometries(ugeom)
    wkb = pa.array(shapely.to_wkb(ugeom), type=pa.binary())
    counts = np.bincount(gi, minlength=len(ukey))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    per_pair = counts[inv]
    rep = np.repeat(np.arange(len(e)), per_pair)
    local = np.arange(len(rep)) - np.repeat(np.cumsum(per_pair) - per_pair, per_pair)
    tile_pos = starts[inv][rep] + local
    tkey = _tile_key(ep, co, ro)
    ukeys, tinv = np.unique(tkey, return_inverse=True)
    first = np.zeros(len(ukeys), dtype=np.int64)
    first[tinv[::-1]] = np.arange(len(tkey))[::-1]  # one (epsg, col, row) per distinct tile
    tile_names = [
        f"EPSG:{a}_{b}_{d}" for a, b, d in zip(ep[first].tolist(), co[first].tolist(), ro[first].tolist())
    ]
    bucket = np.array([zlib.crc32(t.encode()) % buckets for t in tile_names], dtype=np.int32)
    tinv = tinv.ravel()[tile_pos]
    tag = np.full(len(e), None, dtype=object)
    for j, copied in _COPIED:
        sel = c == j
        if sel.any():
            tag[sel] = tags.values(copied).take(pa.array(rows[e[sel]])).to_numpy(zero_copy_only=False)
    return pa.table(
        {"tile_id": pa.array(tile_names, type=pa.string()).take(pa.array(tinv)),
         "category": pa.array(_RASTER_NAMES[c[rep]], type=pa.string()),
         "osm_type": pa.array(np.full(len(rep), osm_type, dtype=object), type=pa.string()),
         "osm_id": pa.array(ids[e[rep]], type=pa.int64()),
         "tag": pa.array(tag[rep], type=pa.string()),
         "geometry": wkb.take(pa.array(inv[rep])),
         "bucket": pa.array(bucket[tinv], type=pa.int32())},
    )  # fmt: skip


def _tile_key(epsg: np.ndarray, col: np.ndarray, row: np.ndarray) -> np.ndarray:
    """One int64 per tile (collision-free: UTM/UPS tile columns and rows are far below ±2^23)."""
    return (epsg.astype(np.int64) << 48) | ((col + (1 << 23)) << 24) | (row + (1 << 23))


def _raster_or_none(tags: TagTable, element_type: str, raster: bool) -> np.ndarray:
    if raster:
        return raster_matrix(tags=tags, element_type=element_type)
    return np.zeros((tags.n, _N_RASTER), dtype=bool)


def _count(stats: ExtractStats, S: np.ndarray, R: np.ndarray | None) -> None:
    for j in np.flatnonzero(S.any(axis=0)):
        stats.features_found[SAMPLING_CATEGORY_NAMES[j]] += int(S[:, j].sum())
    if R is not None:
        for j in np.flatnonzero(R.any(axis=0)):
            stats.raster_features[RASTER_CATEGORIES[j].name] += int(R[:, j].sum())


def node_rows(
    *, ids: np.ndarray, lon: np.ndarray, lat: np.ndarray, valid: np.ndarray, tags: TagTable,
    raster: bool, buckets: int, stats: ExtractStats,
) -> BatchRows:  # fmt: skip
    """Nodes: the sampling point is the node; every raster band of a node draws the node's point."""
    S = sampling_matrix(tags=tags)
    R = _raster_or_none(tags, "node", raster)
    keep = np.flatnonzero((S.any(axis=1) | R.any(axis=1)) & valid)
    S, R = S[keep], R[keep]
    ids, lon, lat = ids[keep], lon[keep], lat[keep]
    _count(stats, S, R if raster else None)
    pts = shapely.points(lon, lat)
    ras = _raster("n", ids, R, np.zeros(_N_RASTER, dtype=np.int64), [pts], tags, keep, buckets)
    return BatchRows(_points("n", ids, S, lon, lat), ras)


def way_geometries(
    lon: np.ndarray, lat: np.ndarray, offsets: np.ndarray, need: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centroid, line, polygon) per way from its located nodes (object arrays, None where undefined).

    A line needs ≥ 2 nodes, a polygon ≥ 3 and must be valid and non-empty (the reference skips
    invalid shapes); the ring is closed automatically, as ``Polygon(coords)`` does. ``need`` (bool
    ``[n, 3]``) limits each kind to the ways that use it.
    """
    n = len(offsets) - 1
    counts = np.diff(offsets)
    if need is None:
        need = np.ones((n, 3), dtype=bool)
    owner = np.repeat(np.arange(n), counts)
    coords = np.column_stack([lon, lat])
    lines = np.full(n, None, dtype=object)
    cents = np.full(n, None, dtype=object)
    polys = np.full(n, None, dtype=object)
    ok2 = (counts >= 2) & (need[:, 0] | need[:, 1])
    if ok2.any():
        sel = ok2[owner]
        shapely.linestrings(coords[sel], indices=owner[sel], out=lines)
        c = ok2 & need[:, 0]
        cents[c] = shapely.centroid(lines[c])
        lines[~need[:, 1]] = None
    ok3 = (counts >= 3) & need[:, 2]
    if ok3.any():
        sel = ok3[owner]
        rings = np.full(n, None, dtype=object)
        shapely.linearrings(coords[sel], indices=owner[sel], out=rings)
        cand = shapely.polygons(rings[ok3])
        good = shapely.is_valid(cand) & ~shapely.is_empty(cand)
        polys[np.flatnonzero(ok3)[good]] = cand[good]
    return cents, lines, polys


def way_rows(
    *, ids: np.ndarray, lon: np.ndarray, lat: np.ndarray, offsets: np.ndarray, tags: TagTable, seed: int,
    raster: bool, buckets: int, stats: ExtractStats,
) -> BatchRows:  # fmt: skip
    """Ways, given the coordinates of their *located* nodes (``offsets`` ``[n + 1]`` into lon/lat).

    Sampling point: the node chosen by :func:`pick_index` among the located ones; a matching way with
    none is counted in ``ways_unlocated`` and dropped.
    """
    S = sampling_matrix(tags=tags)
    R = _raster_or_none(tags, "way", raster)
    counts = np.diff(offsets)
    matched = S.any(axis=1) | R.any(axis=1)
    stats.ways_unlocated += int((matched & (counts == 0)).sum())
    keep = np.flatnonzero(matched & (counts > 0))
    S, R, ids = S[keep], R[keep], ids[keep]
    pick = offsets[keep] + pick_index(ids, seed, counts[keep])
    plon, plat = lon[pick], lat[pick]
    coord_idx = _ranges(offsets[keep], counts[keep])  # located coordinates of the kept ways
    klon, klat = lon[coord_idx], lat[coord_idx]
    kofs = np.concatenate([[0], np.cumsum(counts[keep])])
    need = np.stack([R[:, np.equal(_WAY_SLOT, slot)].any(axis=1) for slot in range(3)], axis=1)
    if raster and R.any():
        geoms = list(way_geometries(klon, klat, kofs, need))
    else:
        geoms = [np.full(len(keep), None)] * 3
    has = np.stack([g != None for g in geoms], axis=1)  # noqa: E711 (element-wise)
    R &= has[:, _WAY_SLOT]
    _count(stats, S, R if raster else None)
    ras = _raster("w", ids, R, _WAY_SLOT, geoms, tags, keep, buckets)
    return BatchRows(_points("w", ids, S, plon, plat), ras)


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + c)`` for each (s, c)."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    return np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) + np.arange(total)


def relation_matches(*, tags: TagTable, raster: bool) -> np.ndarray:
    """bool ``[n]``: relations matching a sampling category or (with ``raster``) a relation raster band."""
    out = sampling_matrix(tags=tags).any(axis=1)
    if raster:
        out |= raster_matrix(tags=tags, element_type="relation").any(axis=1)
    return out


def area_rows(
    *, ids: np.ndarray, geoms: np.ndarray, tags: TagTable, raster: bool, buckets: int, stats: ExtractStats
) -> tuple[BatchRows, np.ndarray]:  # fmt: skip
    """Assembled relation areas (``geoms``: multipolygons, None where assembly failed).

    The sampling point is the area's representative point (``point_on_surface``). Returns the rows and
    the ids of the areas that matched and had a geometry (the "assembled" ones).
    """
    S = sampling_matrix(tags=tags)
    R = _raster_or_none(tags, "relation", raster)
    ok = np.array([g is not None and not g.is_empty for g in geoms], dtype=bool)
    keep = np.flatnonzero((S.any(axis=1) | R.any(axis=1)) & ok)
    S, R, ids = S[keep], R[keep], ids[keep]
    area = np.asarray(geoms, dtype=object)[keep]
    rep = shapely.point_on_surface(area) if len(area) else np.zeros(0, dtype=object)
    lon, lat = (shapely.get_x(rep), shapely.get_y(rep)) if len(area) else (np.zeros(0), np.zeros(0))
    _count(stats, S, R if raster else None)
    ras = _raster("r", ids, R, _AREA_SLOT, [rep, area], tags, keep, buckets)
    return BatchRows(_points("r", ids, S, lon, lat), ras), ids
