"""Direct reads of boxes of a sharded Zarr v3 array on local disk — the loader's hot path.

zarr-python 3 spends about 1 ms per ``__getitem__`` and about 0.3 ms per inner chunk (an event-loop
round trip per call and a thread hop per chunk decode; ``benchmarks/bench_chunking.py`` compares both
readers), more than the loader's small crops take to decode. The corpus's data arrays have one fixed
layout (``sharding_indexed`` whose inner codecs are ``bytes`` [+ ``blosc``] [+ ``crc32c``] and whose
index — ``bytes`` + ``crc32c`` — sits at the end of the shard file), so this module decodes that layout
itself: a shard's whole index is read once when its file is opened (its crc32c checked; kept with the
open file), then one ``pread``, one crc32c and one blosc decompress per touched inner chunk.
:meth:`ShardedArray.from_zarr` returns ``None`` for any other layout or a non-local store, and the
caller falls back to zarr.

Nothing damaged is returned as data: the index's crc32c, the bounds of each entry used, each chunk's
crc32c (layouts that have one), blosc header and decoded size are checked
(:mod:`olmoearth_data.shardfile`), and a read that must find data (``required``: complete samples'
present periods) refuses a missing shard file instead of returning fill values. Failures raise
:class:`~olmoearth_data.shardfile.CorpusDamageError`. Tests compare every read with zarr's.
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
from zarr.storage import LocalStore

from olmoearth_data.shardfile import (
    EMPTY,
    CorruptShardError,
    MissingShardError,
    ShardFormat,
    check_entry,
    decode_chunk,
    read_index,
)

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
        fmt: ShardFormat,
        fill_value: object,
        chunk_key: Callable[[tuple[int, ...]], str],
    ) -> None:
        self.root, self.fmt = root, fmt
        self.shape, self.dtype = fmt.shape, fmt.dtype
        self.fill_value = fill_value
        self.shard_shape, self.chunk_shape = fmt.shard_shape, fmt.chunk_shape
        self.chunks_per_shard = fmt.chunks_per_shard
        self.n_chunks_per_shard = fmt.n_chunks
        # C-order strides of the shard's chunk grid: the index lists chunks in C order
        self._strides = tuple(int(np.prod(self.chunks_per_shard[d + 1 :])) for d in range(len(self.shape)))
        self.compressed = fmt.compressed
        self._chunk_key = chunk_key  # shard grid coordinates → file path relative to the array
        self._stored_dtype = self.dtype.newbyteorder("<")  # the bytes codec is little-endian (checked)
        self._chunk_nbytes = fmt.chunk_nbytes
        # shard → (fd, index: uint64 [n_chunks, 2] of (offset, nbytes), first index byte); LRU
        self._files: OrderedDict[tuple[int, ...], tuple[int, np.ndarray, int]] = OrderedDict()
        self.counters = ReadCounters()

    @classmethod
    def from_zarr(cls, array: zarr.Array) -> ShardedArray | None:
        """A direct reader for ``array``, or ``None`` when its layout or store is not one decoded here."""
        fmt = ShardFormat.from_zarr(array)
        store = array.store_path.store
        if fmt is None or not isinstance(store, LocalStore):
            return None
        return cls(
            root=Path(store.root) / array.store_path.path,
            fmt=fmt,
            fill_value=array.metadata.fill_value,
            chunk_key=array.metadata.encode_chunk_key,
        )

    def read(self, box: Sequence[tuple[int, int]], *, required: bool = False) -> np.ndarray:
        """The values of the half-open box ``[(start, stop), …]`` (one pair per dimension).

        Returns an array of shape ``(stop − start, …)`` in the array's dtype; never-written chunks read
        as the fill value, and so do never-written shards unless ``required`` (the box holds data that
        was written, e.g. a complete sample's present periods): then a missing shard file raises
        :class:`~olmoearth_data.shardfile.MissingShardError`. Damaged bytes raise
        :class:`~olmoearth_data.shardfile.CorruptShardError`.
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
            self._read_shard(shard, axes, out, required=required)
        return out

    def _read_shard(
        self,
        shard: tuple[int, ...],
        axes: list[list[tuple[int, slice, slice]]],
        out: np.ndarray,
        *,
        required: bool,
    ) -> None:
        """Decode the inner chunks ``product(*axes)`` of one shard into ``out``."""
        opened = self._open(shard)
        if opened is None:
            if required:
                raise MissingShardError(
                    f"{self._where(shard)}: shard file missing (its samples are complete)"
                )
            return  # shard never written: all fill
        fd, index, data_end = opened
        chunks = list(product(*axes))
        linear = [sum(i * st for (i, _, _), st in zip(ch, self._strides)) for ch in chunks]
        first = min(linear)
        entries = index[first : max(linear) + 1].tolist()  # one conversion per shard read, not per chunk
        counters = self.counters
        for ch, lin in zip(chunks, linear):
            offset, nbytes = entries[lin - first]
            counters.chunks += 1
            if offset == EMPTY and nbytes == EMPTY:
                counters.empty_chunks += 1
                continue
            if offset == EMPTY or nbytes == EMPTY or offset + nbytes > data_end:  # half empty, out of file
                check_entry(offset, nbytes, data_end=data_end, fmt=self.fmt, where=self._where(shard))
            data = os.pread(fd, nbytes, offset)
            counters.stored_bytes += nbytes
            counters.decoded_bytes += self._chunk_nbytes
            try:
                data = decode_chunk(data, fmt=self.fmt, where=f"chunk {lin}")
            except CorruptShardError as exc:  # the file's path only now: formatting it costs per chunk
                raise CorruptShardError(f"{self._where(shard)} {exc}") from None
            values = np.frombuffer(data, dtype=self._stored_dtype).reshape(self.chunk_shape)
            out[tuple(dst for _, dst, _ in ch)] = values[tuple(src for _, _, src in ch)]

    def _where(self, shard: tuple[int, ...]) -> str:
        return str(self.root / self._chunk_key(shard))

    def _open(self, shard: tuple[int, ...]) -> tuple[int, np.ndarray, int] | None:
        """``(fd, index, data end)`` of a shard's file, kept open (LRU); ``None`` if it was never written.

        The whole index is read and its crc32c checked once, on opening; entries are checked as used."""
        if shard in self._files:
            self._files.move_to_end(shard)
            return self._files[shard]
        path = self.root / self._chunk_key(shard)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            return None
        try:
            size = os.fstat(fd).st_size
            index = read_index(fd, size=size, fmt=self.fmt, where=str(path))
        except BaseException:
            os.close(fd)
            raise
        self.counters.stored_bytes += self.fmt.index_nbytes
        self._files[shard] = (fd, index, size - self.fmt.index_nbytes)
        while len(self._files) > _MAX_OPEN:
            old_fd = self._files.popitem(last=False)[1][0]
            os.close(old_fd)
        return self._files[shard]

    def __getstate__(self) -> dict:
        # open file descriptors mean nothing in another process (spawned loader workers unpickle the
        # dataset, reader included): the copy reopens its files on first use
        return {**self.__dict__, "_files": OrderedDict()}

    def close(self) -> None:
        """Close the shard files kept open."""
        while self._files:
            fd = self._files.popitem()[1][0]
            os.close(fd)

    def __del__(self) -> None:
        if sys.meta_path is not None:  # not during interpreter shutdown
            self.close()
