"""Spooled rows of the OSM pass and their deterministic merge.

Workers append sampling points and raster rows to Arrow IPC files under ``spool/`` (lz4), each row
with its position in the file (piece number, row within the piece). At the end each raster bucket is
sorted by (tile id, category, piece, row) into one GeoParquet part, and the points are merged in
piece order, so the outputs do not depend on which worker did which piece.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from olmoearth_data.osm.vectorised import POINTS_SCHEMA, RASTER_SCHEMA, BatchRows

GEO_META = {
    "version": "1.0.0",
    "primary_column": "geometry",
    # No "crs" member: GeoParquet then means OGC:CRS84 (lon/lat, WGS 84).
    "columns": {"geometry": {"encoding": "WKB", "geometry_types": []}},
}
_POS = [pa.field("piece", pa.int32()), pa.field("seq", pa.int64())]
_POINTS_SPOOL = pa.schema(list(POINTS_SCHEMA) + _POS)
_RASTER_SPOOL = pa.schema(list(RASTER_SCHEMA) + _POS)
_IPC = pa.ipc.IpcWriteOptions(compression="lz4")


class Spool:
    """One worker's spooled rows: points per channel, raster rows per (channel, bucket), Arrow IPC.

    A channel is a worker (``w000``…) or a relation job (``r`` + its piece number); rows carry their
    (piece, row) position so the merge can restore file order. Raster rows are buffered up to
    ``batch_rows`` and written sorted by bucket, one open stream per bucket.
    """

    def __init__(self, root: Path, *, batch_rows: int) -> None:
        self.root, self.batch_rows = root, batch_rows
        self._points: dict[str, pa.ipc.RecordBatchStreamWriter] = {}
        self._raster: dict[tuple[str, int], pa.ipc.RecordBatchStreamWriter] = {}
        self._pending: list[tuple[str, pa.Table]] = []
        self._pending_rows = 0

    def emitter(self, channel: str, piece: int) -> Callable[[BatchRows], None]:
        counters = {"points": 0, "raster": 0}

        def emit(rows: BatchRows) -> None:
            if rows.points.num_rows:
                t = _with_position(rows.points, piece, counters["points"])
                counters["points"] += rows.points.num_rows
                w = self._points.get(channel)
                if w is None:
                    path = self.root / "points" / f"{channel}.arrow"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    w = self._points[channel] = pa.ipc.new_stream(path, _POINTS_SPOOL, options=_IPC)
                w.write_table(t)
            if rows.raster.num_rows:
                t = _with_position(rows.raster, piece, counters["raster"])
                counters["raster"] += rows.raster.num_rows
                self._pending.append((channel, t))
                self._pending_rows += t.num_rows
                if self._pending_rows >= self.batch_rows:
                    self._flush_raster()

        return emit

    def _flush_raster(self) -> None:
        by_channel: dict[str, list[pa.Table]] = {}
        for channel, t in self._pending:
            by_channel.setdefault(channel, []).append(t)
        for channel, tables in by_channel.items():
            t = pa.concat_tables(tables)
            t = t.take(pc.sort_indices(t, [("bucket", "ascending")]))
            bucket = t["bucket"].to_numpy()
            cuts = np.flatnonzero(np.diff(bucket)) + 1
            for lo, hi in zip(np.concatenate([[0], cuts]), np.concatenate([cuts, [len(bucket)]])):
                b = int(bucket[lo])
                w = self._raster.get((channel, b))
                if w is None:
                    path = self.root / "raster" / f"b{b:04d}" / f"{channel}.arrow"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    w = self._raster[(channel, b)] = pa.ipc.new_stream(path, _RASTER_SPOOL, options=_IPC)
                w.write_table(t.slice(lo, hi - lo).drop_columns(["bucket"]))
        self._pending, self._pending_rows = [], 0

    def close_channel(self, channel: str) -> None:
        """Write what is buffered and close ``channel``'s files (a finished relation job's: one open file
        per bucket and job would otherwise pile up in a worker that runs many relation groups)."""
        self._flush_raster()
        for key in [k for k in self._raster if k[0] == channel]:
            self._raster.pop(key).close()
        if (w := self._points.pop(channel, None)) is not None:
            w.close()

    def close(self) -> None:
        """Write what is buffered and close every spool file."""
        self._flush_raster()
        for w in [*self._points.values(), *self._raster.values()]:
            w.close()
        self._points, self._raster = {}, {}


def _with_position(t: pa.Table, piece: int, start: int) -> pa.Table:
    t = t.append_column(_POS[0], pa.array(np.full(t.num_rows, piece, dtype=np.int32)))
    return t.append_column(_POS[1], pa.array(np.arange(start, start + t.num_rows, dtype=np.int64)))


def finalise_bucket(root: Path, bucket: int, out: Path, row_group_rows: int = 8192) -> int:
    """Sort one bucket's spooled rows by (tile, category, piece, row) into GeoParquet ``out``."""
    folder = root / "raster" / f"b{bucket:04d}"
    files = sorted(folder.glob("*.arrow")) if folder.exists() else []
    tables = []
    for f in files:
        with pa.ipc.open_stream(f) as reader:
            tables.append(reader.read_all())
    t = pa.concat_tables(tables).combine_chunks() if tables else _RASTER_SPOOL.empty_table()
    keys = (t["seq"].to_numpy(), t["piece"].to_numpy(), _ranks(t["category"]), _ranks(t["tile_id"]))
    order = np.lexsort(keys)  # by tile, category, then file order
    t = t.take(pa.array(order)).select(RASTER_SCHEMA.names).cast(RASTER_SCHEMA)
    meta = {b"geo": json.dumps(GEO_META).encode()}
    pq.write_table(t.replace_schema_metadata(meta), out, row_group_size=row_group_rows)
    shutil.rmtree(folder, ignore_errors=True)
    return t.num_rows


def _ranks(col: pa.ChunkedArray) -> np.ndarray:
    """Rank of each string in sorted order (dictionary-encode, sort the few distinct values)."""
    enc = pc.dictionary_encode(col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col)
    distinct = np.asarray(enc.dictionary.to_pylist(), dtype=object)
    rank = np.empty(len(distinct), dtype=np.int64)
    rank[np.argsort(distinct, kind="stable")] = np.arange(len(distinct))
    return rank[enc.indices.to_numpy()]


def merge_points(spool: Path, out: Path, n_pieces: int) -> int:
    """Write ``out`` (POINTS_SCHEMA) from the per-worker point spools, in piece order.

    Each worker's spool holds its pieces in increasing order (jobs are dispatched in order), the
    relation jobs have a spool each (the last pieces): a k-way merge by piece keeps memory to one batch.
    """
    folder = spool / "points"
    files = sorted(folder.glob("*.arrow")) if folder.exists() else []
    streams = [_batches(f) for f in files]
    heads = [next(s, None) for s in streams]
    n, pending = 0, []
    with pq.ParquetWriter(out, POINTS_SCHEMA) as writer:
        for piece in range(n_pieces):
            for k, stream in enumerate(streams):
                while heads[k] is not None and heads[k].column("piece")[0].as_py() == piece:
                    pending.append(heads[k])
                    n += heads[k].num_rows
                    heads[k] = next(stream, None)
            if sum(b.num_rows for b in pending) >= 1 << 16:
                writer.write_table(pa.Table.from_batches(pending).select(POINTS_SCHEMA.names))
                pending = []
        if any(h is not None for h in heads):
            raise RuntimeError("point spool out of piece order")
        if pending or n == 0:
            table = pa.Table.from_batches(pending, schema=_POINTS_SPOOL)
            writer.write_table(table.select(POINTS_SCHEMA.names))
    return n


def _batches(path: Path) -> Iterator[pa.RecordBatch]:
    with pa.ipc.open_stream(path) as reader:
        for batch in reader:
            if batch.num_rows:
                yield batch
