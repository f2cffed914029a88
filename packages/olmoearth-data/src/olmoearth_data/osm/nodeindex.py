"""Node locations on disk, written by libosmium and shared by every worker process.

Two layouts, both libosmium's own file formats, so libosmium (area assembly) and numpy (way geometry)
read the same file:

* ``sparse`` — libosmium ``sparse_file_array``: records ``(uint64 id, int32 x, int32 y)`` sorted by id,
  16 bytes per node. Each node piece writes its own file (:func:`piece_spec`); :func:`merge_sparse`
  concatenates them (sorting only if the input was not sorted by id) and writes a contiguous copy of
  the ids for numpy's binary search (8 more bytes per node). Suits extracts up to a few GB.
* ``dense`` — libosmium ``dense_file_array``: ``int32 x, y`` at offset ``8·id``, invalid locations
  ``(2^31−1, 2^31−1)``. Pre-sized to the largest node id before any worker writes
  (:func:`create_dense`), so libosmium never grows the file and workers write disjoint slots of one
  shared mapping. ~100 GB for a planet (node ids up to ~1.3·10^10), O(1) lookups.

Memory: both are memory-mapped files; their pages are page cache the kernel can evict, so a worker's
anonymous memory does not grow with the input.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RECORD = np.dtype([("id", "<u8"), ("x", "<i4"), ("y", "<i4")])
INVALID = np.int32(2**31 - 1)
#: libosmium grows mapped index files in steps of 2^20 entries; a smaller dense file would be grown.
_MIN_DENSE_ENTRIES = 1 << 20


def piece_spec(path: Path) -> str:
    """libosmium location-table spec writing one node piece's sparse index to ``path``."""
    return f"sparse_file_array,{path}"


def sparse_piece_summary(path: Path) -> tuple[int, int, int, bool]:
    """(records, first id, last id, ids strictly ascending) of one piece's sparse index file.

    libosmium leaves the file at its mapped capacity, padded with ``id = 0`` records after the last
    real one; node ids are positive, so the records are the prefix before the first zero id.
    """
    rec = np.memmap(path, dtype=RECORD, mode="r") if path.stat().st_size else np.zeros(0, RECORD)
    ids = rec["id"]
    zero = np.flatnonzero(ids == 0)
    n = int(zero[0]) if len(zero) else len(ids)
    if n == 0:
        return 0, 0, 0, True
    head = np.asarray(ids[:n])
    return n, int(head[0]), int(head[-1]), bool((np.diff(head.astype(np.int64)) > 0).all())


def merge_sparse(*, pieces: list[tuple[Path, int]], out: Path, ids_out: Path, ascending: bool) -> int:
    """Concatenate piece indexes (path, records) into ``out`` plus the id column ``ids_out``.

    With ``ascending`` False (the input's nodes are not sorted by id) the records are sorted in memory
    (16 bytes per node; ``osmium sort`` the input first for files too large for that).
    Deletes the piece files; returns the number of nodes.
    """
    total = sum(n for _, n in pieces)
    if not ascending:
        recs = np.concatenate([np.fromfile(p, dtype=RECORD, count=n) for p, n in pieces if n])
        recs = recs[np.argsort(recs["id"], kind="stable")]
        recs.tofile(out)
        np.ascontiguousarray(recs["id"]).tofile(ids_out)
    else:
        with out.open("wb") as fo, ids_out.open("wb") as fi:
            for p, n in pieces:
                if n:
                    rec = np.fromfile(p, dtype=RECORD, count=n)
                    rec.tofile(fo)
                    np.ascontiguousarray(rec["id"]).tofile(fi)
    for p, _ in pieces:
        p.unlink(missing_ok=True)
    return total


def create_dense(*, path: Path, max_id: int) -> list[tuple[int, int]]:
    """Create the shared dense index file for node ids ``0..max_id`` (sized, not yet filled).

    Returns the (first entry, entries) ranges that :func:`fill_dense` must mark invalid, one job each
    (~1 GB), so workers can fill a planet's ~100 GB in parallel before any node is written.
    """
    entries = max(max_id + 1, _MIN_DENSE_ENTRIES)
    with path.open("wb") as fh:
        fh.truncate(8 * entries)
    step = 1 << 27
    return [(start, min(step, entries - start)) for start in range(0, entries, step)]


def fill_dense(path: Path, start: int, entries: int, chunk: int = 1 << 22) -> None:
    """Mark entries ``start .. start + entries`` of a dense index invalid (``(2^31−1, 2^31−1)``)."""
    fill = np.full(2 * min(chunk, entries), INVALID, dtype="<i4").tobytes()
    fd = os.open(path, os.O_WRONLY)
    try:
        done = 0
        while done < entries:
            k = min(chunk, entries - done)
            os.pwrite(fd, fill[: 8 * k], 8 * (start + done))
            done += k
    finally:
        os.close(fd)


@dataclass
class NodeIndex:
    """numpy lookups into the node index (either layout). ``path`` is the libosmium file."""

    kind: str  # "sparse" | "dense"
    path: Path
    ids_path: Path | None = None

    def __post_init__(self) -> None:
        self._locs: np.ndarray | None = None
        self._ids: np.ndarray | None = None

    def spec(self) -> str:
        """libosmium location-table spec opening this (existing) file."""
        return f"{'dense' if self.kind == 'dense' else 'sparse'}_file_array,{self.path}"

    def lookup(self, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Node ids → (``[k, 2]`` int32 x/y in 1e-7 degrees, bool found-and-valid)."""
        refs = np.asarray(refs, dtype=np.int64)
        if self.kind == "dense":
            if self._locs is None:
                self._locs = np.memmap(self.path, dtype="<i4", mode="r").reshape(-1, 2)
            order = np.argsort(refs, kind="stable")  # read the mapped file front to back
            q = refs[order]
            inside = (q >= 0) & (q < len(self._locs))
            sorted_xy = np.full((len(refs), 2), INVALID, dtype=np.int32)
            sorted_xy[inside] = self._locs[q[inside]]
            xy = np.empty_like(sorted_xy)
            xy[order] = sorted_xy
        else:
            if self._locs is None:
                size = os.path.getsize(self.path)
                self._locs = np.memmap(self.path, dtype=RECORD, mode="r") if size else np.zeros(0, RECORD)
                self._ids = np.memmap(self.ids_path, dtype="<u8", mode="r") if size else np.zeros(0, "<u8")
            assert self._ids is not None
            if len(self._ids) == 0:
                return np.full((len(refs), 2), INVALID, dtype=np.int32), np.zeros(len(refs), dtype=bool)
            # ascending queries: numpy's binary search then starts from the previous hit, and the
            # gather reads the mapped file front to back (~7x faster than in way order)
            order = np.argsort(refs, kind="stable")
            q = refs[order].astype(np.uint64)
            pos = np.minimum(np.searchsorted(self._ids, q), len(self._ids) - 1)
            rec = self._locs[pos]
            hit = (rec["id"] == q) & (refs[order] > 0)
            xy = np.empty((len(refs), 2), dtype=np.int32)
            xy[order, 0] = np.where(hit, rec["x"], INVALID)
            xy[order, 1] = np.where(hit, rec["y"], INVALID)
        # libosmium's Location::valid(): inside ±180° / ±90° (the invalid marker is outside)
        x, y = np.abs(xy[:, 0].astype(np.int64)), np.abs(xy[:, 1].astype(np.int64))
        ok = (x <= 1_800_000_000) & (y <= 900_000_000)
        return xy, ok
