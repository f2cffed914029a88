"""The OSM pass: sampling points and per-tile raster features from an OSM file, block-parallel.

Input: ``.osm.pbf``, ``.osm``, ``.osm.bz2`` or ``.osm.gz`` (non-PBF input is first converted to PBF by
libosmium, in ``out_dir``). Output, in ``out_dir``:

* ``points.parquet`` — one row per (element, sampling category): ``category`` (str), ``osm_type``
  (``"n"``/``"w"``/``"r"``), ``osm_id`` (int64), ``lon``/``lat`` (float64, EPSG:4326 degrees).
  The point is the node itself; for a way a node chosen by a seeded hash of (way id, seed) among its
  nodes with a known location (the reference picks one uniformly at random, unseeded); for a relation
  the representative point of its assembled multipolygon (relations osmium cannot assemble as an
  area — non-multipolygon types, broken rings — are counted in ``relations_unassembled`` and skipped).
  Rows are in file order (nodes, ways, then relation areas; per element, categories in §3.2 order).
* ``raster/part-XXX.parquet`` — GeoParquet (WKB, CRS OGC:CRS84 = lon/lat) of the 30 raster
  categories: ``tile_id``, ``category``, ``osm_type``, ``osm_id``, ``tag`` (the copied tag value or
  null), ``geometry``. A feature is repeated for every tile it intersects; rows are sorted by
  (``tile_id``, ``category``, file order) so Parquet min/max statistics let :func:`read_tile_features`
  read one tile by touching one or two row groups. Geometry stays in lon/lat (the rasteriser projects
  into the tile's UTM CRS). Part ``b`` holds the tiles with ``crc32(tile_id) % buckets == b``.
* ``extent.json`` — ``{"bbox": [west, south, east, north]}`` (EPSG:4326 degrees) from the input file's
  header (``<bounds>`` of an ``.osm`` file, the PBF header bbox), or ``{"bbox": null}`` when the file
  declares none. It says which tiles the input *covers*: the rasteriser marks a tile's OSM modality
  present only there (``olmoearth_data.materialise.osm_raster``), so a tile beyond an extract's edge
  is missing, not "no features".
* ``extract_stats.json`` — :class:`ExtractStats`.

How (design and measurements: ``docs/osm.md``): no element reaches Python one at a time.
libosmium reads, filters on the categories' keys (C++ ``KeyFilter``) and writes the matches as OPL
text (:mod:`~olmoearth_data.osm.opl`); pyarrow parses that text in batches, the category rules are
evaluated once per batch, geometries, WKB and tiles are built with shapely 2 / pyproj array calls
(:mod:`~olmoearth_data.osm.vectorised`). The file is split into pieces of PBF blobs processed by
``workers`` processes (:mod:`~olmoearth_data.osm.parallel`): nodes first (their locations go to an
on-disk index shared by all workers, :mod:`~olmoearth_data.osm.nodeindex`), then ways and relations.
Every output is identical for any number of workers.

Memory does not grow with the input: node locations live in a memory-mapped file on disk
(``sparse``: 24 bytes per node; ``dense``: 8 bytes per node id up to the largest, ~100 GB for a
planet), i.e. page cache, not process memory; a worker holds one piece (≤ 128 way blobs / 512 node
blobs, ~1–4 M elements) and one batch of rows; raster rows are spooled to disk in ``buckets`` parts,
each sorted alone at the end (by default one bucket per 64 MB of PBF, so a bucket holds the raster
rows of ≤ 64 MB of input whatever the file); libosmium's multipolygon assembly holds the member ways
of one relation group (≤ 64 relation blobs, ~500,000 relations) per job, not of the whole file. Peak ≈
workers × (piece + batch + one bucket or one relation group).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import osmium
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from olmoearth_data.osm.blocks import BlobError, scan_blobs
from olmoearth_data.osm.parallel import IndexGrewError, WorkerError, run_pass
from olmoearth_data.osm.vectorised import POINTS_SCHEMA, RASTER_SCHEMA, ExtractStats

__all__ = [
    "POINTS_SCHEMA", "RASTER_SCHEMA", "ExtractResult", "ExtractStats", "OsmInputError", "check_osm_file",
    "choose_node_index", "default_buckets", "extract_osm", "header_bbox", "read_tile_features",
]  # fmt: skip

#: Inputs above this size get the dense node index (O(1) lookups, 8 bytes per node id).
DENSE_INDEX_BYTES = 20 << 30
#: PBF bytes per raster part (bucket) by default.
BUCKET_PBF_BYTES = 64 << 20


class OsmInputError(ValueError):
    """The OSM input is missing, truncated or not OSM data (message names the file and the remedy)."""


def choose_node_index(*, path: Path, node_index: str | None = None) -> str:
    """``"dense"`` or ``"sparse"``: as asked (a libosmium spec naming ``dense…`` counts as dense),
    else dense for inputs above :data:`DENSE_INDEX_BYTES` (a planet), sparse below."""
    if node_index:
        return "dense" if node_index.startswith("dense") else "sparse"
    return "dense" if path.stat().st_size > DENSE_INDEX_BYTES else "sparse"


def default_buckets(pbf_bytes: int) -> int:
    """Raster parts for a PBF of ``pbf_bytes``: one per :data:`BUCKET_PBF_BYTES` (1 for an extract,
    ~1,000 for a planet), so sorting one part at the end needs memory independent of the file."""
    return int(min(1024, max(1, -(-pbf_bytes // BUCKET_PBF_BYTES))))


def check_osm_file(*, path: Path | str) -> Path:
    """Raise :class:`OsmInputError` unless ``path`` exists and has an OSM extension; return it."""
    path = Path(path)
    if not path.is_file():
        raise OsmInputError(f"OSM file {path} does not exist; pass an .osm.pbf, .osm or .osm.bz2 file")
    name = path.name.lower()
    if not name.endswith((".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".osm.gz")):
        raise OsmInputError(f"OSM file {path} has an unknown extension; expected .osm.pbf, .osm or .osm.bz2")
    return path


def _unreadable(path: Path, why: object) -> OsmInputError:
    return OsmInputError(
        f"cannot read OSM file {path}: {why}; it is truncated or not OSM data — re-download it "
        "(check its size/checksum) or pass a valid .osm.pbf/.osm/.osm.bz2"
    )


def to_pbf(*, path: Path, out: Path) -> Path:
    """Convert an OSM file of any format libosmium reads to PBF ``out`` (C++ only, order kept)."""
    out.unlink(missing_ok=True)
    writer = osmium.SimpleWriter(osmium.io.File(str(out), "pbf,add_metadata=false"))
    try:
        with osmium.io.Reader(str(path)) as reader:
            osmium.apply(reader, writer)
    except RuntimeError as exc:
        raise _unreadable(path, exc) from exc
    finally:
        writer.close()
    return out


@dataclass
class ExtractResult:
    """Paths written by :func:`extract_osm`, the pass's stats and its wall seconds per stage."""

    points: Path
    raster_dir: Path
    stats: ExtractStats
    timings: dict[str, float] = field(default_factory=dict)


def extract_osm(
    *, path: Path | str, out_dir: Path | str, seed: int = 0, node_index: str | None = None,
    raster: bool = True, buckets: int | None = None, batch_rows: int = 200_000, progress: bool = False,
    workers: int = 1, piece_blobs: int | None = None,
) -> ExtractResult:  # fmt: skip
    """Write ``points.parquet``, ``raster/``, ``extent.json`` and ``extract_stats.json`` (module doc).

    ``workers``: processes (1 runs in this one); the outputs do not depend on it. ``buckets``: raster
    parts (default :func:`default_buckets`). ``node_index``:
    ``"sparse"``/``"dense"`` (default by file size, :func:`choose_node_index`). ``piece_blobs``: PBF
    blobs per work piece (default by file size). Raises :class:`OsmInputError` if the file is unreadable.
    """
    path = check_osm_file(path=path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if workers < 1:
        raise ValueError(f"workers must be ≥ 1, got {workers}")
    pbf = path
    if not path.name.lower().endswith(".pbf"):
        pbf = to_pbf(path=path, out=out_dir / "input.osm.pbf")
    try:
        blobs = scan_blobs(pbf)
    except (BlobError, OSError) as exc:
        raise _unreadable(path, exc) from exc
    for old in (out_dir / "raster").glob("part-*.parquet"):
        old.unlink()
    bar = tqdm(desc=f"osm {path.name}", unit=" pieces", disable=not progress)
    try:
        kind = choose_node_index(path=pbf, node_index=node_index)
        buckets = buckets or default_buckets(pbf.stat().st_size)
        res = run_pass(blobs=blobs, out_dir=out_dir, seed=seed, raster=raster, buckets=buckets,
                       batch_rows=batch_rows, workers=workers, piece_blobs=piece_blobs, index_kind=kind,
                       progress=bar.update)  # fmt: skip
    except WorkerError as exc:
        if exc.kind in ("RuntimeError", "BlobError"):  # libosmium's read errors, a bad blob
            raise _unreadable(path, exc.message) from None
        if exc.kind == "IndexGrewError":
            raise OsmInputError(f"OSM file {path}: {exc.message}") from None
        raise
    except IndexGrewError as exc:
        raise OsmInputError(f"OSM file {path}: {exc}") from exc
    finally:
        bar.close()
        if pbf != path:
            pbf.unlink(missing_ok=True)
    stats = res.stats
    (out_dir / "extract_stats.json").write_text(json.dumps(stats.to_dict(), indent=2, sort_keys=True))
    (out_dir / "extent.json").write_text(json.dumps({"bbox": header_bbox(path=path)}))
    return ExtractResult(out_dir / "points.parquet", out_dir / "raster", stats, res.timings)


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


def read_tile_features(*, raster_dir: Path | str, tile_id: str) -> pa.Table:
    """Raster-category features intersecting one tile: a table with RASTER_SCHEMA (geometry WKB lon/lat)."""
    tables = [
        pq.read_table(p, filters=[("tile_id", "=", tile_id)])
        for p in sorted(Path(raster_dir).glob("*.parquet"))
    ]
    return pa.concat_tables(tables) if tables else RASTER_SCHEMA.empty_table()
