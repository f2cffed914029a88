"""The jobs of the OSM pass, as run by a worker process (or in the calling process).

A job is a node piece, a way piece, a relation group, a blob-type scan, a dense-index fill or the
sort of one raster bucket (:mod:`olmoearth_data.osm.parallel` says in which order). Each piece job:
libosmium writes the piece's matching elements as OPL (C++), pyarrow parses it in batches, the batch
code builds the rows, the spool keeps them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import osmium
import osmium.filter
import shapely

from olmoearth_data.osm.blocks import BlobIndex, blob_types, read_piece
from olmoearth_data.osm.categories import RULE_KEYS
from olmoearth_data.osm.nodeindex import NodeIndex, fill_dense, piece_spec, sparse_piece_summary
from olmoearth_data.osm.opl import (
    key_filter,
    parse_coord,
    parse_ids,
    parse_refs,
    parse_way_members,
    read_opl,
    strip1,
    write_opl,
)
from olmoearth_data.osm.spool import Spool, finalise_bucket
from olmoearth_data.osm.tagtable import TagTable
from olmoearth_data.osm.vectorised import (
    BatchRows,
    ExtractStats,
    area_rows,
    node_rows,
    relation_matches,
    way_rows,
)

_RELATION_KEYS = sorted(RULE_KEYS | {"type"})
_AREA_TYPES = frozenset({"multipolygon", "boundary"})  # what libosmium's area manager assembles
_AREA_BATCH = 4096


@dataclass(frozen=True)
class PassConfig:
    """Everything a worker needs (picklable)."""

    blobs: BlobIndex
    spool: Path
    seed: int
    raster: bool
    buckets: int
    batch_rows: int
    osmium_threads: int
    index: NodeIndex


@dataclass(frozen=True)
class Piece:
    """Consecutive data blobs of one stage; ``number`` orders its rows in the merged outputs."""

    number: int
    stage: str  # "n" (nodes) | "w" (ways)
    blobs: np.ndarray  # int64 blob indices into PassConfig.blobs, ascending


@dataclass(frozen=True)
class RelationJob:
    """One relation group: its relation blobs (read in pieces) and every way piece (second pass)."""

    number: int
    relation_blobs: list[np.ndarray]
    way_blobs: list[np.ndarray]


@dataclass
class PieceResult:
    """What a piece or relation job reports back (its rows went to the spool)."""

    stats: ExtractStats
    #: sparse index of a node piece: (records, first id, last id, ascending)
    index_summary: tuple[int, int, int, bool] | None = None
    #: wall seconds of the job
    seconds: float = 0.0
    #: CPU seconds of the job (all threads of the worker process)
    cpu_seconds: float = 0.0


class Worker:
    """One worker's state: libosmium thread pool, spool writers, opened node index."""

    def __init__(self, wid: int, cfg: PassConfig) -> None:
        self.wid, self.cfg = wid, cfg
        _allow_open_files(cfg.buckets + 64)  # one spool writer per bucket stays open
        self.pool = osmium.io.ThreadPool(num_threads=cfg.osmium_threads)
        self.tmp = cfg.spool / "tmp" / f"w{wid:03d}.opl"
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        self.spool = Spool(cfg.spool, batch_rows=cfg.batch_rows)
        self._dense_table: osmium.index.LocationTable | None = None
        self._data = b""

    # ---------------------------------------------------------------- jobs
    def run(self, job: object) -> object:
        if isinstance(job, Piece | RelationJob):
            t0, c0 = time.perf_counter(), time.process_time()
            if isinstance(job, RelationJob):
                res = self._relations(job)
            else:
                res = self._node_piece(job) if job.stage == "n" else self._way_piece(job)
            res.seconds, res.cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
            return res
        kind, *args = job  # type: ignore[misc]
        if kind == "types":
            return blob_types(self.cfg.blobs, *args)
        if kind == "flush":
            self.close()
            return None
        if kind == "bucket":
            return finalise_bucket(self.cfg.spool, *args)
        if kind == "fill":
            return fill_dense(*args)
        raise ValueError(f"unknown job {job!r}")

    def _buffer(self, blobs: np.ndarray) -> osmium.io.FileBuffer:
        """The piece as an in-memory PBF (its bytes stay referenced until the next piece is read)."""
        self._data = read_piece(self.cfg.blobs, blobs)
        return osmium.io.FileBuffer(self._data, "pbf")

    def _node_piece(self, piece: Piece) -> PieceResult:
        cfg, stats = self.cfg, ExtractStats()
        summary = None
        if cfg.index.kind == "sparse":
            path = cfg.index.path.parent / f"piece-{piece.number:06d}.idx"
            path.unlink(missing_ok=True)
            table = osmium.index.create_map(piece_spec(path))
            write_opl(source=self._buffer(piece.blobs), entities=osmium.osm.NODE, out=self.tmp,
                      locations=table, thread_pool=self.pool)  # fmt: skip
            del table  # unmaps and closes the piece's index file
            summary = sparse_piece_summary(path)
        else:
            if self._dense_table is None:
                self._dense_table = osmium.index.create_map(cfg.index.spec())
            write_opl(source=self._buffer(piece.blobs), entities=osmium.osm.NODE, out=self.tmp,
                      locations=self._dense_table, thread_pool=self.pool)  # fmt: skip
        emit = self.spool.emitter(f"w{self.wid:03d}", piece.number)
        for batch in read_opl(self.tmp, "n"):
            ids = parse_ids(batch["id"])
            lon, okx = parse_coord(batch["x"])
            lat, oky = parse_coord(batch["y"])
            valid = okx & oky & (np.abs(lon) <= 180.0) & (np.abs(lat) <= 90.0)
            stats.tagged_elements += len(ids)
            tags = TagTable.from_opl(strip1(batch["tags"]))
            emit(node_rows(ids=ids, lon=lon, lat=lat, valid=valid, tags=tags, raster=cfg.raster,
                           buckets=cfg.buckets, stats=stats))  # fmt: skip
        return PieceResult(stats, summary)

    def _way_piece(self, piece: Piece) -> PieceResult:
        cfg, stats = self.cfg, ExtractStats()
        write_opl(source=self._buffer(piece.blobs), entities=osmium.osm.WAY, out=self.tmp,
                  thread_pool=self.pool)  # fmt: skip
        emit = self.spool.emitter(f"w{self.wid:03d}", piece.number)
        for batch in read_opl(self.tmp, "w"):
            ids = parse_ids(batch["id"])
            refs, offsets = parse_refs(batch["nodes"])
            xy, ok = cfg.index.lookup(refs)
            owner = np.repeat(np.arange(len(ids)), np.diff(offsets))
            located = np.concatenate([[0], np.cumsum(np.bincount(owner[ok], minlength=len(ids)))])
            stats.tagged_elements += len(ids)
            emit(way_rows(ids=ids, lon=xy[ok, 0] / 1e7, lat=xy[ok, 1] / 1e7, offsets=located,
                          tags=TagTable.from_opl(strip1(batch["tags"])), seed=cfg.seed, raster=cfg.raster,
                          buckets=cfg.buckets, stats=stats))  # fmt: skip
        return PieceResult(stats)

    def _relations(self, job: RelationJob) -> PieceResult:
        """Relations: which match a category, and their assembled areas (see the module doc)."""
        cfg, stats = self.cfg, ExtractStats()
        manager = osmium.area.AreaManager()
        first_pass, kf = manager.first_pass_handler(), key_filter()
        matched, members = [], []
        for blobs in job.relation_blobs:
            write_opl(source=self._buffer(blobs), entities=osmium.osm.RELATION, out=self.tmp,
                      thread_pool=self.pool)  # fmt: skip
            for batch in read_opl(self.tmp, "r"):
                ids = parse_ids(batch["id"])
                tags = TagTable.from_opl(strip1(batch["tags"]), keys=_RELATION_KEYS)
                stats.tagged_elements += len(ids)
                matched.append(ids[relation_matches(tags=tags, raster=cfg.raster)])
                candidate = tags.isin("type", _AREA_TYPES)
                way_ids, owner = parse_way_members(batch["members"])
                members.append(way_ids[candidate[owner]])
            with osmium.io.Reader(self._buffer(blobs), osmium.osm.RELATION, thread_pool=self.pool) as rd:
                osmium.apply(rd, kf, first_pass)
        member_ids = np.unique(np.concatenate(members)) if members else np.zeros(0, dtype=np.int64)
        assembled: list[np.ndarray] = []
        if len(member_ids) and cfg.index.path.stat().st_size:  # no node located: no area either
            channel = f"r{job.number:06d}"
            emit = self.spool.emitter(channel, job.number)
            tracker = osmium.IdTracker()
            for w in member_ids.tolist():
                tracker.add_way(w)
            table = osmium.index.create_map(cfg.index.spec())
            lh = osmium.NodeLocationsForWays(table)
            lh.ignore_errors()
            id_filter, area_filter = tracker.id_filter(), key_filter()
            areas = osmium.BufferIterator(area_filter)
            second_pass = manager.second_pass_to_buffer(areas)
            pending: tuple[list, list, list] = ([], [], [])
            factory = osmium.geom.WKBFactory()
            for blobs in job.way_blobs:
                with osmium.io.Reader(self._buffer(blobs), osmium.osm.WAY, thread_pool=self.pool) as rd:
                    osmium.apply(rd, id_filter, lh, second_pass)  # filter first: only member ways located
                self._drain_areas(areas, pending, factory, stats, emit, assembled, final=False)
            self._drain_areas(areas, pending, factory, stats, emit, assembled, final=True)
            self.spool.close_channel(channel)
            del second_pass, areas, lh, table
        matched_ids = np.unique(np.concatenate(matched)) if matched else np.zeros(0, dtype=np.int64)
        done = np.unique(np.concatenate(assembled)) if assembled else np.zeros(0, dtype=np.int64)
        stats.relations_unassembled = len(np.setdiff1d(matched_ids, done))
        return PieceResult(stats)

    def _drain_areas(self, areas: osmium.BufferIterator, pending: tuple[list, list, list],
                     factory: osmium.geom.WKBFactory, stats: ExtractStats, emit: Callable[[BatchRows], None],
                     assembled: list[np.ndarray], *, final: bool) -> None:  # fmt: skip
        ids, tags, wkbs = pending
        for area in areas:
            if area.from_way():
                continue  # a closed member way: ways are handled as ways
            ids.append(area.orig_id())
            tags.append({t.k: t.v for t in area.tags})
            try:
                wkbs.append(factory.create_multipolygon(area))
            except RuntimeError:
                wkbs.append(None)
        if ids and (final or len(ids) >= _AREA_BATCH):
            stats.tagged_elements += len(ids)
            geoms = shapely.from_wkb(np.array(wkbs, dtype=object), on_invalid="ignore")
            table = TagTable.from_dicts(tags, keys=_RELATION_KEYS)
            rows, done = area_rows(ids=np.asarray(ids, dtype=np.int64), geoms=geoms, tags=table,
                                   raster=self.cfg.raster, buckets=self.cfg.buckets, stats=stats)  # fmt: skip
            assembled.append(done)
            emit(rows)
            for lst in pending:
                lst.clear()

    def close(self) -> None:
        self.spool.close()
        self._dense_table = None


def _allow_open_files(n: int) -> None:
    """Raise this process's soft open-file limit to ``n`` if the hard limit allows."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < n:
            resource.setrlimit(
                resource.RLIMIT_NOFILE, (n if hard == resource.RLIM_INFINITY else min(n, hard), hard)
            )
    except (ImportError, ValueError, OSError):
        pass
