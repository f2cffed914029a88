"""Direct reads of boxes of a sharded Zarr v3 array on local disk — the loader's hot path.

zarr-python 3 spends about 1 ms per ``__getitem__`` and about 0.3 ms per inner chunk (an event-loop
round trip per call and a thread hop per chunk decode; ``benchmarks/bench_chunking.py`` compares both
readers), more than the loader's small crops take to decode. The corpus's data arrays have one fixed layout
(``sharding_indexed`` whose inner codecs are ``bytes`` [+ ``blosc``] and whose index — ``bytes`` +
``crc32c`` — sits at the end of the shard file), so this module decodes that layout itself: one
``pread`` of the part of the shard index the box needs, then one ``pread`` and one blosc decompress per
touched inner chunk. :meth:`ShardedArray.from_zarr` returns ``None`` for any other layout or a
non-local store, and the caller falls back to zarr.

The index is read partially, so its crc32c is not checked (zarr checks it on every read). That is
safe for what the loader reads: the builder writes a shard before the ``status`` that marks its
samples complete, and the loader reads complete samples only. Tests compare every read with zarr's.
"""

from __future__ import annotations

import os
import sys
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np
import zarr
from numcodecs import blosc
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec
from zarr.codecs.sharding import ShardingCodecIndexLocation
from zarr.storage import LocalStore

#: An inner chunk that was never written (all fill value): offset and length both 2⁶⁴ − 1.
_EMPTY = 2**64 - 1
#: Open shard files kept per array (a loader worker reads one sample at a time, so few are live).
_MAX_OPEN = 8


@dataclass
class ReadCounters:
    """What reads cost: inner chunks touched, bytes read from disk (chunks + index), bytes decoded."""

    chunks: int = 0
    empty_chunks: int = 0
    stored_bytes: int = 0
    decoded_bytes: int = 0


class ShardedArray:
    """Random-access reads of boxes of one sharded Zarr v3 array, without zarr's async machinery."""

    def __init__(
        self,
        *,
        root: Path,
        shape: tuple[int, ...],
        dtype: np.dtype,
        fill_value: object,
        shard_shape: tuple[int, ...],
        chunk_shape: tuple[int, ...],
        compressed: bool,
        chunk_key: Callable[[tuple[int, ...]], str],
    ) -> None:
        if any(s % c for s, c in zip(shard_shape, chunk_shape)):
            raise ValueError(f"shard shape {shard_shape} is not a multiple of chunk shape {chunk_shape}")
        self.root, self.shape, self.dtype = root, shape, dtype
        self.fill_value = fill_value
        self.shard_shape, self.chunk_shape = shard_shape, chunk_shape
        self.chunks_per_shard = tuple(s // c for s, c in zip(shard_shape, chunk_shape))
        self.n_chunks_per_shard = int(np.prod(self.chunks_per_shard))
        # C-order strides of the shard's chunk grid: the index lists chunks in C order
        self._strides = tuple(int(np.prod(self.chunks_per_shard[d + 1 :])) for d in range(len(shape)))
        self.compressed = compressed
        self._chunk_key = chunk_key  # shard grid coordinates → file path relative to the array
        self._stored_dtype = dtype.newbyteorder("<")  # the bytes codec is little-endian (checked)
        self._chunk_nbytes = int(np.prod(chunk_shape)) * dtype.itemsize
        self._files: OrderedDict[tuple[int, ...], tuple[int, int]] = OrderedDict()  # shard → (fd, size)
        self.counters = ReadCounters()

    @classmethod
    def from_zarr(cls, array: zarr.Array) -> ShardedArray | None:
        """A direct reader for ``array``, or ``None`` when its layout or store is not one decoded here."""
        meta = array.metadata
        if meta.zarr_format != 3 or len(meta.codecs) != 1 or not isinstance(meta.codecs[0], ShardingCodec):
            return None
        sharding = meta.codecs[0]
        if sharding.index_location != ShardingCodecIndexLocation.end:
            return None
        index_codecs = tuple(sharding.index_codecs)
        if not (
            len(index_codecs) == 2
            and _little_endian_bytes(index_codecs[0])
            and isinstance(index_codecs[1], Crc32cCodec)
        ):
            return None
        inner = tuple(sharding.codecs)
        if not inner or not _little_endian_bytes(inner[0]):
            return None
        if len(inner) > 2 or (len(inner) == 2 and not isinstance(inner[1], BloscCodec)):
            return None
        store = array.store_path.store
        if not isinstance(store, LocalStore):
            return None
        return cls(
            root=Path(store.root) / array.store_path.path,
            shape=tuple(array.shape),
            dtype=np.dtype(array.dtype),
            fill_value=meta.fill_value,
            shard_shape=tuple(array.shards),
            chunk_shape=tuple(sharding.chunk_shape),
            compressed=len(inner) == 2,
            chunk_key=meta.encode_chunk_key,
        )

    def read(self, box: Sequence[tuple[int, int]]) -> np.ndarray:
        """The values of the half-open box ``[(start, stop), …]`` (one pair per dimension).

        Returns an array of shape ``(stop − start, …)`` in the array's dtype; never-written chunks and
        shards read as the fill value.
        """
        if len(box) != len(self.shape):
            raise ValueError(f"box has {len(box)} dimensions, the array has {len(self.shape)}")
        start, stop = [int(b[0]) for b in box], [int(b[1]) for b in box]
        if any(a < 0 or b > n or a >= b for a, b, n in zip(start, stop, self.shape)):
            raise IndexError(f"box {list(box)} is empty or outside the array's shape {self.shape}")
        out = np.full([b - a for a, b in zip(start, stop)], self.fill_value, dtype=self.dtype)
        # per dimension: the global inner-chunk range, and which shards it spans
        first = [a // c for a, c in zip(start, self.chunk_shape)]
        last = [(b - 1) // c for b, c in zip(stop, self.chunk_shape)]
        per = self.chunks_per_shard
        shards = [range(f // p, e // p + 1) for f, e, p in zip(first, last, per)]
        for shard in product(*shards):
            # per dimension: (chunk index inside the shard, destination slice, source slice)
            axes = []
            for d, s in enumerate(shard):
                c, n = self.chunk_shape[d], []
                for g in range(max(first[d], s * per[d]), min(last[d], (s + 1) * per[d] - 1) + 1):
                    a, b = max(start[d], g * c), min(stop[d], (g + 1) * c)
                    n.append((g - s * per[d], slice(a - start[d], b - start[d]), slice(a - g * c, b - g * c)))
                axes.append(n)
            self._read_shard(shard, axes, out)
        return out

    def _read_shard(
        self, shard: tuple[int, ...], axes: list[list[tuple[int, slice, slice]]], out: np.ndarray
    ) -> None:
        """Decode the inner chunks ``product(*axes)`` of one shard into ``out``."""
        opened = self._open(shard)
        if opened is None:
            return  # shard never written: all fill
        fd, size = opened
        chunks = list(product(*axes))
        linear = [sum(i * st for (i, _, _), st in zip(ch, self._strides)) for ch in chunks]
        first, last = min(linear), max(linear)
        index_start = size - (16 * self.n_chunks_per_shard + 4)  # entries, then the crc32c
        raw = os.pread(fd, 16 * (last - first + 1), index_start + 16 * first)
        entries = np.frombuffer(raw, dtype="<u8").reshape(-1, 2).tolist()
        counters = self.counters
        counters.stored_bytes += len(raw)
        for ch, lin in zip(chunks, linear):
            offset, nbytes = entries[lin - first]
            counters.chunks += 1
            if offset == _EMPTY and nbytes == _EMPTY:
                counters.empty_chunks += 1
                continue
            data = os.pread(fd, nbytes, offset)
            counters.stored_bytes += nbytes
            counters.decoded_bytes += self._chunk_nbytes
            if self.compressed:
                data = blosc.decompress(data)
            values = np.frombuffer(data, dtype=self._stored_dtype).reshape(self.chunk_shape)
            out[tuple(dst for _, dst, _ in ch)] = values[tuple(src for _, _, src in ch)]

    def _open(self, shard: tuple[int, ...]) -> tuple[int, int] | None:
        """``(fd, file size)`` of a shard's file, kept open (LRU); ``None`` if it was never written."""
        if shard in self._files:
            self._files.move_to_end(shard)
            return self._files[shard]
        try:
            fd = os.open(self.root / self._chunk_key(shard), os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            return None
        self._files[shard] = (fd, os.fstat(fd).st_size)
        while len(self._files) > _MAX_OPEN:
            old_fd, _ = self._files.popitem(last=False)[1]
            os.close(old_fd)
        return self._files[shard]

    def __getstate__(self) -> dict:
        # open file descriptors mean nothing in another process (spawned loader workers unpickle the
        # dataset, reader included): the copy reopens its files on first use
        return {**self.__dict__, "_files": OrderedDict()}

    def close(self) -> None:
        """Close the shard files kept open."""
        while self._files:
            fd, _ = self._files.popitem()[1]
            os.close(fd)

    def __del__(self) -> None:
        if sys.meta_path is not None:  # not during interpreter shutdown
            self.close()


def _little_endian_bytes(codec: object) -> bool:
    return isinstance(codec, BytesCodec) and (codec.endian is None or codec.endian.value == "little")
