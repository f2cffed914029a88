"""One streaming pyosmium pass over an OSM file: sampling points and per-tile raster features.

Input: ``.osm.pbf``, ``.osm`` or ``.osm.bz2`` (pyosmium picks the decoder from the name). Output, in
``out_dir``:

* ``points.parquet`` — one row per (element, sampling category): ``category`` (str), ``osm_type``
  (``"n"``/``"w"``/``"r"``), ``osm_id`` (int64), ``lon``/``lat`` (float64, EPSG:4326 degrees).
  The point is the node itself; for a way a node chosen by a seeded hash of (way id, seed) among its
  nodes with a known location (the reference picks one uniformly at random, unseeded); for a relation
  the representative point of its assembled multipolygon (relations osmium cannot assemble as an
  area — non-multipolygon types, broken rings — are counted in ``relations_unassembled`` and skipped).
* ``raster/part-XXX.parquet`` — GeoParquet (WKB, CRS OGC:CRS84 = lon/lat) of the 30 raster
  categories: ``tile_id``, ``category``, ``osm_type``, ``osm_id``, ``tag`` (the copied tag value or
  null), ``geometry``. A feature is repeated for every tile it intersects; rows are sorted by
  ``tile_id`` so Parquet min/max statistics let :func:`read_tile_features` read one tile by touching
  one or two row groups. Geometry stays in lon/lat (the rasteriser projects into the tile's UTM CRS).
* ``extent.json`` — ``{"bbox": [west, south, east, north]}`` (EPSG:4326 degrees) from the input file's
  header (``<bounds>`` of an ``.osm`` file, the PBF header bbox), or ``{"bbox": null}`` when the file
  declares none. It says which tiles the input *covers*: the rasteriser marks a tile's OSM modality
  present only there (``olmoearth_data.materialise.osm_raster``), so a tile beyond an extract's edge
  is missing, not "no features".

Memory: node locations live in an osmium index whose kind is chosen by file size (see
:func:`default_node_index`); points and raster rows are flushed to disk every ``batch_rows`` rows,
raster rows into ``buckets`` spool files keyed by a hash of the tile id, each sorted alone at the end,
so peak memory is ~ index + one bucket. For a planet PBF (~80 GB, node ids up to ~1.2e10) use
``dense_file_array`` (a ~100 GB memory-mapped file indexed by node id: O(1) lookups, no sort) with
``buckets≈256``; ``sparse_file_array`` (16 B per node, sorted) suits regional extracts.
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import osmium
import osmium.filter
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from tqdm import tqdm

from olmoearth_data.osm.categories import (
    RELEVANT_KEYS,
    GeometryKind,
    RasterCategory,
    raster_categories,
    sampling_categories,
)
from olmoearth_data.osm.geometry import tiles_for_geometry

POINTS_SCHEMA = pa.schema(
    [("category", pa.string()), ("osm_type", pa.string()), ("osm_id", pa.int64()),
     ("lon", pa.float64()), ("lat", pa.float64())]
)  # fmt: skip
RASTER_SCHEMA = pa.schema(
    [("tile_id", pa.string()), ("category", pa.string()), ("osm_type", pa.string()),
     ("osm_id", pa.int64()), ("tag", pa.string()), ("geometry", pa.binary())]
)  # fmt: skip
_GEO_META = {
    "version": "1.0.0",
    "primary_column": "geometry",
    # No "crs" member: GeoParquet then means OGC:CRS84 (lon/lat, WGS 84).
    "columns": {"geometry": {"encoding": "WKB", "geometry_types": []}},
}


class OsmInputError(ValueError):
    """The OSM input is missing, truncated or not OSM data (message names the file and the remedy)."""


@dataclass
class OsmMatch:
    """One element matching ≥1 category. ``lon``/``lat`` is None when no location could be found."""

    osm_type: str
    osm_id: int
    categories: list[str]
    lon: float | None
    lat: float | None
    #: (raster category, lon/lat geometry, copied tag value) per matching raster category.
    raster: list[tuple[RasterCategory, BaseGeometry, str | None]] = field(default_factory=list)


@dataclass
class ExtractStats:
    """Counts of one pass. ``features_found`` counts elements per sampling category."""

    #: elements with a relevant key (after the C++ key filter) plus assembled relation areas
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


def default_node_index(*, path: Path, index_dir: Path) -> str:
    """osmium location-index spec for ``path``: in memory below 1 GB, else an on-disk file array."""
    size = path.stat().st_size
    if size < 1 << 30:
        return "flex_mem"
    kind = "dense_file_array" if size > 20 << 30 else "sparse_file_array"
    index_dir.mkdir(parents=True, exist_ok=True)
    return f"{kind},{index_dir / 'node_locations.idx'}"


def _pick(osm_id: int, seed: int, n: int) -> int:
    """Deterministic index in [0, n) from (id, seed): splitmix64 finaliser, so ways pick varied nodes."""
    z = (osm_id * 0x9E3779B97F4A7C15 + seed * 0xBF58476D1CE4E5B9 + 1) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) % n


def _relevant_tags(tags: osmium.osm.TagList) -> dict[str, str] | None:
    # The C++ KeyFilter already dropped elements without a relevant key; this guards direct callers.
    d = {t.k: t.v for t in tags}
    return d if not RELEVANT_KEYS.isdisjoint(d) else None


def _way_geometry(kind: GeometryKind, coords: list[tuple[float, float]]) -> BaseGeometry | None:
    if len(coords) < 2:
        return None
    line = LineString(coords)
    if kind is GeometryKind.POINT:
        return line.centroid
    if kind is GeometryKind.POLYGON:
        if len(coords) < 3:
            return None
        poly = Polygon(coords)
        return poly if poly.is_valid and not poly.is_empty else None  # reference skips invalid shapes
    return line


def check_osm_file(*, path: Path | str) -> Path:
    """Raise :class:`OsmInputError` unless ``path`` exists and has an OSM extension; return it."""
    path = Path(path)
    if not path.is_file():
        raise OsmInputError(f"OSM file {path} does not exist; pass an .osm.pbf, .osm or .osm.bz2 file")
    name = path.name.lower()
    if not name.endswith((".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".osm.gz")):
        raise OsmInputError(f"OSM file {path} has an unknown extension; expected .osm.pbf, .osm or .osm.bz2")
    return path


def iter_osm_matches(
    *, path: Path | str, seed: int = 0, node_index: str = "flex_mem", raster: bool = True,
    stats: ExtractStats | None = None, progress: bool = False,
) -> Iterator[OsmMatch]:  # fmt: skip
    """Stream ``path`` once (plus osmium's relation pre-pass) and yield every matching element.

    ``node_index`` is an osmium location storage spec (``flex_mem``, ``sparse_file_array,<path>``, …).
    Raises :class:`OsmInputError` if the file is unreadable.
    """
    path = check_osm_file(path=path)
    stats = stats if stats is not None else ExtractStats()
    proc = osmium.FileProcessor(str(path)).with_locations(node_index)
    # Assemble only relations carrying a relevant key (the filter applies to the relation pre-pass).
    key_filter = osmium.filter.KeyFilter(*sorted(RELEVANT_KEYS))
    proc = proc.with_areas(key_filter)
    # Filters run after the location handler, so untagged nodes still feed the index but never reach
    # Python (most of a planet's ~10^10 elements), and assembled areas are filtered the same way.
    proc = proc.with_filter(osmium.filter.KeyFilter(*sorted(RELEVANT_KEYS)))
    bar = tqdm(desc=f"osm {path.name}", unit=" elem", unit_scale=True, disable=not progress)
    matched_relations: set[int] = set()
    assembled: set[int] = set()
    try:
        for obj in proc:
            stats.tagged_elements += 1
            if stats.tagged_elements % 65536 == 0:
                bar.update(65536)
            if obj.is_area():
                if obj.from_way():
                    continue  # ways are handled as ways (their own geometry rules)
                match = _area_match(obj, raster, stats)
                if match is not None:
                    assembled.add(match.osm_id)
                    yield match
                continue
            tags = _relevant_tags(obj.tags)
            if tags is None:
                continue
            if obj.is_node():
                cats = sampling_categories(tags=tags)
                rcats = raster_categories(tags=tags, element_type="node") if raster else []
                if not cats and not rcats:
                    continue
                loc = obj.location
                if not loc.valid():
                    continue
                pt = Point(loc.lon, loc.lat)
                stats.features_found.update(cats)
                ras = [(c, pt, tags.get(c.copied_tag) if c.copied_tag else None) for c in rcats]
                yield OsmMatch("n", obj.id, cats, loc.lon, loc.lat, ras)
            elif obj.is_way():
                match = _way_match(obj, tags, seed, raster, stats)
                if match is not None:
                    yield match
            elif obj.is_relation() and (
                sampling_categories(tags=tags)
                or (raster and raster_categories(tags=tags, element_type="relation"))
            ):
                matched_relations.add(obj.id)  # to count those osmium cannot assemble
    except RuntimeError as exc:
        raise OsmInputError(
            f"cannot read OSM file {path}: {exc}; it is truncated or not OSM data — re-download it "
            "(check its size/checksum) or pass a valid .osm.pbf/.osm/.osm.bz2"
        ) from exc
    finally:
        bar.close()
    stats.relations_unassembled = len(matched_relations - assembled)


def _way_match(way: osmium.osm.Way, tags: dict[str, str], seed: int, raster: bool, stats: ExtractStats
               ) -> OsmMatch | None:  # fmt: skip
    cats = sampling_categories(tags=tags)
    rcats = raster_categories(tags=tags, element_type="way") if raster else []
    if not cats and not rcats:
        return None
    coords = [(n.lon, n.lat) for n in way.nodes if n.location.valid()]
    if not coords:
        stats.ways_unlocated += 1
        return None
    lon, lat = coords[_pick(way.id, seed, len(coords))]
    out = []
    for c in rcats:
        # river: ways are lines, only relations become polygons
        kind = GeometryKind.LINESTRING if c.geometry is GeometryKind.LINE_OR_AREA else c.geometry
        geom = _way_geometry(kind, coords)
        if geom is not None:
            out.append((c, geom, tags.get(c.copied_tag) if c.copied_tag else None))
    stats.features_found.update(cats)
    return OsmMatch("w", way.id, cats, lon, lat, out)


def _area_match(area: osmium.osm.Area, raster: bool, stats: ExtractStats) -> OsmMatch | None:
    tags = _relevant_tags(area.tags)
    if tags is None:
        return None
    cats = sampling_categories(tags=tags)
    rcats = raster_categories(tags=tags, element_type="relation") if raster else []
    if not cats and not rcats:
        return None
    try:
        geom = shapely.from_wkb(_WKB.create_multipolygon(area), on_invalid="ignore")
    except RuntimeError:
        return None
    if geom is None or geom.is_empty:
        return None
    rep = geom.representative_point()
    out = []
    for c in rcats:
        g = rep if c.geometry is GeometryKind.POINT else geom
        out.append((c, g, tags.get(c.copied_tag) if c.copied_tag else None))
    stats.features_found.update(cats)
    return OsmMatch("r", area.orig_id(), cats, rep.x, rep.y, out)


_WKB = osmium.geom.WKBFactory()


@dataclass
class ExtractResult:
    """Paths written by :func:`extract_osm` and the pass's stats."""

    points: Path
    raster_dir: Path
    stats: ExtractStats


def extract_osm(
    *, path: Path | str, out_dir: Path | str, seed: int = 0, node_index: str | None = None,
    raster: bool = True, buckets: int = 1, batch_rows: int = 200_000, progress: bool = False,
) -> ExtractResult:  # fmt: skip
    """Run :func:`iter_osm_matches` and write ``points.parquet`` and ``raster/`` (module doc)."""
    path = check_osm_file(path=path)
    out_dir = Path(out_dir)
    (out_dir / "raster").mkdir(parents=True, exist_ok=True)
    spool = out_dir / "raster_spool"
    spool.mkdir(exist_ok=True)
    index = node_index or default_node_index(path=path, index_dir=out_dir / "index")
    stats = ExtractStats()
    points_path = out_dir / "points.parquet"
    pts: dict[str, list] = {k: [] for k in POINTS_SCHEMA.names}
    ras: list[dict[str, list]] = [{k: [] for k in RASTER_SCHEMA.names} for _ in range(buckets)]
    writers: list[pq.ParquetWriter | None] = [None] * buckets
    with pq.ParquetWriter(points_path, POINTS_SCHEMA) as pw:
        for m in iter_osm_matches(path=path, seed=seed, node_index=index, raster=raster, stats=stats,
                                  progress=progress):  # fmt: skip
            if m.lon is not None:
                for c in m.categories:
                    for k, v in zip(POINTS_SCHEMA.names, (c, m.osm_type, m.osm_id, m.lon, m.lat)):
                        pts[k].append(v)
            for cat, geom, tag in m.raster:
                stats.raster_features[cat.name] += 1
                wkb = shapely.to_wkb(geom)
                for tile in tiles_for_geometry(geom=geom):
                    b = zlib.crc32(tile.id.encode()) % buckets
                    for k, v in zip(RASTER_SCHEMA.names, (tile.id, cat.name, m.osm_type, m.osm_id, tag, wkb)):
                        ras[b][k].append(v)
                    if len(ras[b]["tile_id"]) >= batch_rows:
                        writers[b] = _flush(ras[b], spool / f"{b:03d}.parquet", writers[b])
            if len(pts["category"]) >= batch_rows:
                pw.write_table(pa.table(pts, schema=POINTS_SCHEMA))
                pts = {k: [] for k in POINTS_SCHEMA.names}
        pw.write_table(pa.table(pts, schema=POINTS_SCHEMA))
    for b in range(buckets):
        writers[b] = _flush(ras[b], spool / f"{b:03d}.parquet", writers[b])
        writers[b].close()
        _finalise_bucket(spool / f"{b:03d}.parquet", out_dir / "raster" / f"part-{b:03d}.parquet")
    spool.rmdir()
    (out_dir / "extract_stats.json").write_text(json.dumps(stats.to_dict(), indent=2, sort_keys=True))
    (out_dir / "extent.json").write_text(json.dumps({"bbox": header_bbox(path=path)}))
    return ExtractResult(points_path, out_dir / "raster", stats)


def header_bbox(*, path: Path | str) -> list[float] | None:
    """The bbox an OSM file's header declares, ``[west, south, east, north]`` degrees; None if none."""
    reader = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING)
    try:
        box = reader.header().box()
    finally:
        reader.close()
    if not box.valid():
        return None
    return [box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat]


def _flush(cols: dict[str, list], path: Path, writer: pq.ParquetWriter | None) -> pq.ParquetWriter:
    writer = writer or pq.ParquetWriter(path, RASTER_SCHEMA)
    writer.write_table(pa.table(cols, schema=RASTER_SCHEMA))
    for v in cols.values():
        v.clear()
    return writer


def _finalise_bucket(spool_file: Path, out: Path, row_group_rows: int = 8192) -> None:
    table = pq.read_table(spool_file)
    table = table.take(
        pc.sort_indices(table, sort_keys=[("tile_id", "ascending"), ("category", "ascending")])
    )
    meta = dict(table.schema.metadata or {})
    meta[b"geo"] = json.dumps(_GEO_META).encode()
    pq.write_table(table.replace_schema_metadata(meta), out, row_group_size=row_group_rows)
    spool_file.unlink()


def read_tile_features(*, raster_dir: Path | str, tile_id: str) -> pa.Table:
    """Raster-category features intersecting one tile: a table with RASTER_SCHEMA (geometry WKB lon/lat)."""
    tables = [
        pq.read_table(p, filters=[("tile_id", "=", tile_id)])
        for p in sorted(Path(raster_dir).glob("*.parquet"))
    ]
    return pa.concat_tables(tables) if tables else RASTER_SCHEMA.empty_table()
