"""Block-parallel driver of the OSM pass: PBF pieces across worker processes, merged deterministically.

Stages (a piece is a run of consecutive PBF blobs, :mod:`olmoearth_data.osm.blocks`):

0. **blob types** — which blobs hold nodes, ways, relations (blob headers, partial inflation); for
   the dense index, the file sized to the largest node id and filled with "invalid" by the workers.
1. **nodes** — every piece holding nodes, in parallel: libosmium stores every node's location in the
   on-disk index (:mod:`olmoearth_data.osm.nodeindex`) and writes the tagged ones as OPL; the batch
   code (:mod:`olmoearth_data.osm.vectorised`) turns them into sampling points and raster rows.
2. **ways** — every piece holding ways, in parallel, once all nodes are indexed (a way's nodes may sit
   in any node piece): OPL of the matching ways, node refs resolved with numpy against the index.
   **relations** run as more jobs of this stage, one per *relation group* (≤ ``RELATION_GROUP_BLOBS``
   consecutive relation blobs, i.e. a relation-id range): the group's first pass (libosmium's area
   manager), then a second pass over all way pieces restricted (``IdTracker``) to member ways of the
   group's candidate multipolygons, so only relation areas are assembled and a job holds the member
   ways of ≤ 8,000 × ``RELATION_GROUP_BLOBS`` relations, whatever the file (one more decode of the
   way blobs per group is the price).
3. **merge** — raster rows are spooled per (bucket, worker) with their (piece, row) position; each
   bucket is sorted by (tile, category, piece, row) into ``raster/part-XXX.parquet``; points are
   concatenated in piece order. Pieces are fixed by the file (``piece_blobs``), not by the number of
   workers, so every output is identical for any ``workers``, and rows keep the file's order.

Worker processes are forked when the pass starts, before any job runs (:mod:`olmoearth_data.osm.pool`
says why that is safe and cheap); with one worker everything runs in the calling process. Like any
multiprocessing code, a script calling :func:`~olmoearth_data.osm.extract.extract_osm` with
``workers > 1`` needs the ``if __name__ == "__main__":`` guard where ``fork`` is not available.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import osmium

from olmoearth_data.osm.blocks import NODE, RELATION, WAY, BlobIndex, blob_types, pieces, read_piece
from olmoearth_data.osm.nodeindex import NodeIndex, create_dense, merge_sparse
from olmoearth_data.osm.pool import InlinePool, ProcessPool, WorkerError
from olmoearth_data.osm.spool import merge_points
from olmoearth_data.osm.vectorised import ExtractStats
from olmoearth_data.osm.worker import PassConfig, Piece, RelationJob

__all__ = [
    "IndexGrewError",
    "PassResult",
    "WorkerError",
    "default_piece_blobs",
    "run_pass",
    "way_piece_blobs",
]

#: A node piece is this many way pieces long (ways carry the Python work, nodes mostly C++).
NODE_PIECE_FACTOR = 8
#: Largest pieces (blobs): a piece is read into memory whole (~0.1 MB per blob) and its matches are
#: written to a scratch OPL file (~150 bytes per matching element) before they are parsed in batches.
MAX_PIECE_BLOBS, MAX_NODE_PIECE_BLOBS = 128, 512
#: Relation blobs per relation job (~8,000 relations each): bounds the member ways libosmium's
#: multipolygon assembly holds in one worker; each group re-reads the way blobs once.
RELATION_GROUP_BLOBS = 64


class IndexGrewError(ValueError):
    """The dense node index had to grow while workers wrote it (unsorted input)."""


@dataclass
class PassResult:
    """Counts of the pass, its number of pieces, the node index's size (bytes) and timings."""

    stats: ExtractStats
    n_pieces: int
    index_bytes: int
    #: wall seconds per stage (types, nodes, index, ways_relations, buckets, points), summed over the
    #: relation jobs (relation_jobs) and the node / way pieces (busy_*), and CPU seconds (cpu_*)
    timings: dict[str, float] = field(default_factory=dict)


def default_piece_blobs(n_blobs: int) -> int:
    """Blobs per node piece, divided by ``NODE_PIECE_FACTOR`` (~8,000 elements a blob): a function of
    the file only, never of the number of workers."""
    return int(min(MAX_PIECE_BLOBS, max(4, math.ceil(n_blobs / 128))))


def way_piece_blobs(n_way_blobs: int) -> int:
    """Blobs per way piece: ~128 way pieces whatever the file, so the last pieces leave workers idle
    for a small share of the stage (the Python work is in the ways; a piece costs a few milliseconds
    beyond its work, measured flat from 3 to 20 blobs). A function of the file only."""
    return int(min(MAX_PIECE_BLOBS, max(2, math.ceil(n_way_blobs / 128))))


def run_pass(
    *, blobs: BlobIndex, out_dir: Path, seed: int, raster: bool, buckets: int, batch_rows: int,
    workers: int, index_kind: str, piece_blobs: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> PassResult:  # fmt: skip
    """Run the stages of the module doc on ``blobs``; write ``points.parquet`` and ``raster/``."""
    spool, index_dir = out_dir / "spool", out_dir / "index"
    shutil.rmtree(spool, ignore_errors=True)
    spool.mkdir(parents=True)
    index_dir.mkdir(parents=True, exist_ok=True)
    link_dir = None
    if "," in str(index_dir):  # libosmium splits index specs ("kind,file") at every comma
        link_dir = Path(tempfile.mkdtemp(prefix="olmoearth-osm-"))
        (link_dir / "index").symlink_to(index_dir.resolve(), target_is_directory=True)
        index_dir = link_dir / "index"
    cpus = os.cpu_count() or 1
    threads = max(1, cpus // workers - 1)
    index = NodeIndex(index_kind, index_dir / "nodes.idx", index_dir / "nodes.ids")
    cfg = PassConfig(blobs, spool, seed, raster, buckets, batch_rows, threads, index)
    clock = [time.perf_counter()]
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        clock.append(time.perf_counter())
        timings[name] = round(clock[-1] - clock[-2], 3)

    try:
        result = _stages(cfg, out_dir, workers, index_kind, piece_blobs, progress, lap)
    finally:  # scratch space goes, also on failure (a planet's dense index is ~100 GB)
        shutil.rmtree(spool, ignore_errors=True)
        shutil.rmtree(out_dir / "index", ignore_errors=True)
        if link_dir is not None:
            shutil.rmtree(link_dir, ignore_errors=True)
    result.timings = {**timings, **result.timings}
    return result


def _stages(
    cfg: PassConfig, out_dir: Path, workers: int, index_kind: str, piece_blobs: int | None,
    progress: Callable[[int], None] | None, lap: Callable[[str], None],
) -> PassResult:  # fmt: skip
    blobs, index, buckets, spool = cfg.blobs, cfg.index, cfg.buckets, cfg.spool
    timings: dict[str, float] = {}
    pool: InlinePool | ProcessPool = InlinePool(cfg) if workers <= 1 else ProcessPool(cfg, workers)
    try:
        lap("start")
        types = _types(pool, blobs)
        lap("types")
        dense_bytes = 0
        if index_kind == "dense":
            ranges = create_dense(path=index.path, max_id=_max_node_id(blobs, types))
            pool.map([("fill", index.path, start, n) for start, n in ranges])
            dense_bytes = index.path.stat().st_size
            lap("dense_index")
        per = piece_blobs or way_piece_blobs(int(np.count_nonzero(types & WAY)))
        # few tagged nodes reach Python: node pieces are mostly C++ work, larger pieces cost less overhead
        node_per = piece_blobs or min(
            default_piece_blobs(len(blobs)) * NODE_PIECE_FACTOR, MAX_NODE_PIECE_BLOBS
        )
        node_pieces = pieces(np.flatnonzero(types & NODE), node_per)
        way_blobs = pieces(np.flatnonzero(types & WAY), per)
        rel_groups = pieces(np.flatnonzero(types & RELATION), piece_blobs or RELATION_GROUP_BLOBS)
        jobs_n = [Piece(i, "n", b) for i, b in enumerate(node_pieces)]
        jobs_w = [Piece(len(jobs_n) + i, "w", b) for i, b in enumerate(way_blobs)]
        first_rel = len(jobs_n) + len(jobs_w)
        rel = [RelationJob(first_rel + k, pieces(g, per), way_blobs) for k, g in enumerate(rel_groups)]
        n_pieces = first_rel + len(rel)
        tick = (lambda i, r: progress(1)) if progress else None
        res_n = pool.map(jobs_n, tick)
        lap("nodes")
        index_bytes = _finish_index(index, jobs_n, res_n, dense_bytes)
        lap("index")
        res_w = pool.map(rel + jobs_w, tick)  # relation jobs first: they are the longest
        pool.broadcast(("flush",))
        lap("ways_relations")
        stats = ExtractStats()
        for r in [*res_n, *res_w]:
            stats.add(r.stats)  # type: ignore[union-attr]
        if rel:
            timings["relation_jobs"] = round(sum(r.seconds for r in res_w[: len(rel)]), 3)  # type: ignore[union-attr]
        way_results = res_w[len(rel) :]
        timings["busy_nodes"] = round(sum(r.seconds for r in res_n), 3)  # type: ignore[union-attr]
        timings["busy_ways"] = round(sum(r.seconds for r in way_results), 3)  # type: ignore[union-attr]
        timings["cpu_nodes"] = round(sum(r.cpu_seconds for r in res_n), 3)  # type: ignore[union-attr]
        timings["cpu_ways"] = round(sum(r.cpu_seconds for r in way_results), 3)  # type: ignore[union-attr]
        (out_dir / "raster").mkdir(parents=True, exist_ok=True)
        pool.map([("bucket", b, out_dir / "raster" / f"part-{b:03d}.parquet") for b in range(buckets)])
        lap("buckets")
    finally:
        pool.close()
    merge_points(spool, out_dir / "points.parquet", n_pieces)
    lap("points")
    return PassResult(stats, n_pieces, index_bytes, timings)


def _types(pool: InlinePool | ProcessPool, blobs: BlobIndex) -> np.ndarray:
    n = len(blobs)
    if n < 2048 or pool.size == 1:  # ~200 MB: a fraction of a second here
        return blob_types(blobs)
    step = math.ceil(n / (4 * pool.size))
    parts = pool.map([("types", i, min(n, i + step)) for i in range(0, n, step)])
    return np.concatenate(parts)  # type: ignore[arg-type]


def _max_node_id(blobs: BlobIndex, types: np.ndarray) -> int:
    """Largest node id (dense index size): the last node blob's, the file being sorted by type then id."""
    node_blobs = np.flatnonzero(types & NODE)
    if not len(node_blobs):
        return 0
    data = read_piece(blobs, node_blobs[-1:])
    best = 0
    for obj in osmium.FileProcessor(osmium.io.FileBuffer(data, "pbf"), osmium.osm.NODE):
        best = max(best, obj.id)
    return best


def _finish_index(index: NodeIndex, jobs: list[Piece], results: list[object], dense_bytes: int) -> int:
    """Sparse: concatenate the piece indexes (sorted unless the file is); dense: check it did not grow."""
    if index.kind == "dense":
        if index.path.stat().st_size != dense_bytes:
            raise IndexGrewError(
                "a node id exceeds the largest id of the last node block: the input is not sorted by type "
                "then id, which the dense node index needs (run `osmium sort`, or use the sparse index)"
            )
        return dense_bytes
    parts, ascending, last = [], True, 0
    for job, r in zip(jobs, results):
        n, first, final, inner = r.index_summary  # type: ignore[union-attr]
        path = index.path.parent / f"piece-{job.number:06d}.idx"
        if n:
            ascending &= inner and first > last
            last = final
        parts.append((path, n))
    merge_sparse(pieces=parts, out=index.path, ids_out=index.ids_path, ascending=ascending)  # type: ignore[arg-type]
    return index.path.stat().st_size + index.ids_path.stat().st_size  # type: ignore[union-attr]
