"""An OSM PBF file as a list of blobs, so worker processes can each read a piece of it.

A PBF file is a sequence of blobs, each ``[4-byte big-endian length][BlobHeader][Blob]``; the first is the
``OSMHeader``, every other an ``OSMData`` block of ~8,000 elements of one type (PBF format spec,
wiki.openstreetmap.org/wiki/PBF_Format). Any header blob followed by any subset of data blobs is again a
valid PBF, which pyosmium reads from memory (``osmium.io.FileBuffer``): that is how a piece is handed to
libosmium. :func:`scan_blobs` reads only the blob headers (seeks over the data); :func:`blob_types` says
which element types each blob holds, decompressing it only as far as its first primitive group.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NODE, WAY, RELATION = 1, 2, 4
ALL_TYPES = NODE | WAY | RELATION
# PrimitiveGroup field → element type (1 nodes, 2 dense nodes, 3 ways, 4 relations; 5 changesets)
_GROUP_TYPE = {1: NODE, 2: NODE, 3: WAY, 4: RELATION}


class BlobError(ValueError):
    """The file is not a readable PBF (truncated, or not PBF at all)."""


@dataclass(frozen=True)
class BlobIndex:
    """Byte ranges of a PBF's blobs: the header blob and the data blobs (``offsets``/``lengths`` int64)."""

    path: Path
    header: tuple[int, int]
    offsets: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets)


def _varint(buf: bytes | memoryview, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if i >= len(buf):
            raise BlobError("truncated varint")
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes | memoryview):
    """Top-level (field number, wire type, value) of a protobuf message; LEN values as memoryviews."""
    view = memoryview(buf)
    i, n = 0, len(view)
    while i < n:
        key, i = _varint(view, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(view, i)
        elif wire == 2:
            size, i = _varint(view, i)
            value, i = view[i : i + size], i + size
        elif wire == 5:
            value, i = view[i : i + 4], i + 4
        elif wire == 1:
            value, i = view[i : i + 8], i + 8
        else:
            raise BlobError(f"unsupported protobuf wire type {wire}")
        if i > n:
            raise BlobError("truncated protobuf message")
        yield number, wire, value


def scan_blobs(path: Path | str) -> BlobIndex:
    """Read the blob headers of ``path``. Raises :class:`BlobError` if it is not a whole PBF file."""
    path = Path(path)
    size = path.stat().st_size
    offsets, lengths = [], []
    header: tuple[int, int] | None = None
    with path.open("rb") as fh:
        pos = 0
        while pos < size:
            head = fh.read(4)
            if len(head) < 4:
                raise BlobError(f"truncated blob header at byte {pos}")
            (hlen,) = struct.unpack(">I", head)
            if hlen > 64 * 1024:
                raise BlobError(f"blob header of {hlen} bytes at byte {pos} (not a PBF file)")
            raw = fh.read(hlen)
            if len(raw) < hlen:
                raise BlobError(f"truncated blob header at byte {pos}")
            fields = {number: value for number, _, value in _fields(raw)}
            kind = bytes(fields.get(1, b"")).decode("ascii", "replace")
            datasize = int(fields.get(3, -1))
            if datasize < 0 or datasize > 32 * 1024 * 1024:
                raise BlobError(f"blob at byte {pos} has no valid size (not a PBF file)")
            total = 4 + hlen + datasize
            if pos + total > size:
                raise BlobError(f"blob at byte {pos} runs past the end of the file ({size} bytes)")
            if kind == "OSMHeader" and header is None and not offsets:
                header = (pos, total)
            elif kind == "OSMData":
                offsets.append(pos)
                lengths.append(total)
            fh.seek(datasize, os.SEEK_CUR)
            pos += total
    if header is None:
        raise BlobError("no OSMHeader blob at the start (not a PBF file)")
    return BlobIndex(path, header, np.asarray(offsets, dtype=np.int64), np.asarray(lengths, dtype=np.int64))


def _block_types(blob: memoryview) -> int:
    """Element-type bits of one data blob (``ALL_TYPES`` when its compression is not readable here).

    A zlib blob is inflated in growing steps only until its first primitive group's first field is
    seen (libosmium writes one group per block, ending the block), usually a fraction of the block.
    """
    (hlen,) = struct.unpack(">I", blob[:4])
    body = {number: value for number, _, value in _fields(blob[4 + hlen :])}
    if 1 in body:
        data = bytes(body[1])
        return _group_types(data, len(data)) or 0
    if 3 not in body:  # lzma / lz4 / zstd: let libosmium read it in every stage
        return ALL_TYPES
    raw_size = int(body[2]) if 2 in body else None
    inflate = zlib.decompressobj()
    source, data, step = bytes(body[3]), b"", 1 << 15
    while True:
        data += inflate.decompress(source, step)
        source = inflate.unconsumed_tail
        done = inflate.eof or not source
        types = _group_types(data, len(data) if done else raw_size)
        if types is not None:
            return types
        if done:
            return ALL_TYPES
        step *= 2


def _group_types(data: bytes, total: int | None) -> int | None:
    """Types of the groups of a PrimitiveBlock of ``total`` bytes (None: unknown) given its first
    ``len(data)`` bytes; None when more bytes are needed to be sure."""
    view = memoryview(data)
    i, n, types = 0, len(view), 0
    try:
        while i < n:
            key, i = _varint(view, i)
            number, wire = key >> 3, key & 7
            if wire == 0:
                _, i = _varint(view, i)
                continue
            if wire in (1, 5):
                i += 8 if wire == 1 else 4
                continue
            if wire != 2:
                raise BlobError(f"unsupported protobuf wire type {wire}")
            size, i = _varint(view, i)
            if number == 2:
                gkey, _ = _varint(view, i)
                types |= _GROUP_TYPE.get(gkey >> 3, 0)
            i += size
            if total is not None and i >= total:
                return types
    except BlobError:
        if total is not None and n >= total:
            raise
        return None
    return types if total is not None and n >= total else None


def blob_types(index: BlobIndex, start: int = 0, stop: int | None = None) -> np.ndarray:
    """uint8 type bits (``NODE | WAY | RELATION``) of data blobs ``start..stop``."""
    stop = len(index) if stop is None else stop
    out = np.zeros(stop - start, dtype=np.uint8)
    with index.path.open("rb") as fh:
        for k in range(start, stop):
            fh.seek(int(index.offsets[k]))
            out[k - start] = _block_types(memoryview(fh.read(int(index.lengths[k]))))
    return out


def read_piece(index: BlobIndex, blobs: np.ndarray) -> bytes:
    """The header blob followed by data blobs ``blobs`` (ascending indices): a PBF in memory."""
    parts = []
    with index.path.open("rb") as fh:
        fh.seek(index.header[0])
        parts.append(fh.read(index.header[1]))
        blobs = np.asarray(blobs, dtype=np.int64)
        # coalesce runs of adjacent blobs into one read each
        breaks = np.flatnonzero(np.diff(blobs) != 1) + 1
        for run in np.split(blobs, breaks):
            if len(run):
                first, last = int(run[0]), int(run[-1])
                start = int(index.offsets[first])
                fh.seek(start)
                parts.append(fh.read(int(index.offsets[last] + index.lengths[last]) - start))
    return b"".join(parts)


def pieces(blobs: np.ndarray, per_piece: int) -> list[np.ndarray]:
    """Split ascending blob indices into consecutive groups of at most ``per_piece``."""
    return [blobs[i : i + per_piece] for i in range(0, len(blobs), per_piece)]
