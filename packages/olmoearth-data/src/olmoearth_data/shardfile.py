"""The corpus's shard files, byte by byte: what a sound one looks like, and the checks that prove it.

Every ``data`` array of a corpus is a Zarr v3 array with one ``sharding_indexed`` codec: a shard file
holds inner chunks (``bytes`` → ``blosc`` [→ ``crc32c``]) followed by the index — per inner chunk, in
C order, ``(offset, nbytes)`` as little-endian uint64 (``2⁶⁴ − 1`` twice: never written, all fill) —
and the index's own crc32c (4 bytes, little-endian). :class:`ShardFormat` describes one array's
layout; :func:`read_index` and :func:`decode_chunk` read a shard checking everything there is to
check, and raise :class:`CorruptShardError` naming the file and what failed:

* index: the file is at least as long as the index and the index's crc32c matches; every entry is
  either empty or lies inside the data region (before the index) with a possible chunk length (the
  loader checks the entries it uses, :func:`check_entry`; ``verify`` all of them and that no two
  overlap, :func:`check_index`);
* chunk: its crc32c (corpora written since the layout added one per chunk; older corpora have none,
  so a flipped byte inside their compressed chunks can go unnoticed), the blosc header's sizes, the
  decompressed length.

Shared by the loader's direct reader (``olmoearth_model.data.shards``), ``olmoearth-data verify``
and ``olmoearth-data stats`` (:func:`shard_key`, :func:`shard_exists` for missing shard files).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property

import google_crc32c
import numpy as np
import zarr
from numcodecs import blosc
from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec
from zarr.codecs.sharding import ShardingCodecIndexLocation
from zarr.core.sync import sync

#: An inner chunk that was never written (all fill value): offset and length both 2⁶⁴ − 1.
EMPTY = 2**64 - 1
#: Bytes of a blosc(1) frame header: no compressed chunk is shorter.
_BLOSC_HEADER = 16
#: CRC-32C of any message followed by its own CRC-32C (little-endian): the algorithm's residue.
_CRC32C_RESIDUE = 0x48674BC7


class CorpusDamageError(ValueError):
    """Corpus data that is damaged or missing (base of the two kinds below)."""


class CorruptShardError(CorpusDamageError):
    """A shard file whose bytes fail a check (checksum, bounds, decoding)."""


class MissingShardError(CorpusDamageError):
    """A shard file that must exist (it holds complete samples' data) and does not."""


@dataclass(frozen=True)
class ShardFormat:
    """The byte layout of one sharded ``data`` array.

    Attributes:
        shape, shard_shape, chunk_shape: array, shard and inner-chunk shapes (elements).
        dtype: the array's dtype; stored little-endian.
        compressed: inner chunks are blosc-compressed.
        chunk_crc: inner chunks end with their crc32c.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    shard_shape: tuple[int, ...]
    chunk_shape: tuple[int, ...]
    compressed: bool
    chunk_crc: bool

    def __post_init__(self) -> None:
        if any(s % c for s, c in zip(self.shard_shape, self.chunk_shape)):
            raise ValueError(
                f"shard shape {self.shard_shape} is not a multiple of chunk shape {self.chunk_shape}"
            )

    @cached_property  # per-chunk hot path: computed once
    def chunks_per_shard(self) -> tuple[int, ...]:
        return tuple(s // c for s, c in zip(self.shard_shape, self.chunk_shape))

    @cached_property
    def n_chunks(self) -> int:
        """Inner chunks per shard (= index entries)."""
        return int(np.prod(self.chunks_per_shard))

    @cached_property
    def chunk_nbytes(self) -> int:
        """Decoded bytes of one inner chunk."""
        return int(np.prod(self.chunk_shape)) * self.dtype.itemsize

    @cached_property
    def index_nbytes(self) -> int:
        """Bytes of the index at the end of a shard file: 16 per chunk plus the crc32c."""
        return 16 * self.n_chunks + 4

    @cached_property
    def n_shards(self) -> tuple[int, ...]:
        """Shards along each dimension."""
        return tuple(-(-n // s) for n, s in zip(self.shape, self.shard_shape))

    @classmethod
    def from_zarr(cls, array: zarr.Array) -> ShardFormat | None:
        """The layout of ``array``, or ``None`` when it is not one decoded here (see the module doc)."""
        meta = array.metadata
        if meta.zarr_format != 3 or len(meta.codecs) != 1 or not isinstance(meta.codecs[0], ShardingCodec):
            return None
        sharding = meta.codecs[0]
        if sharding.index_location != ShardingCodecIndexLocation.end:
            return None
        index_codecs = tuple(sharding.index_codecs)
        if not (
            len(index_codecs) == 2
            and _little_endian(index_codecs[0])
            and isinstance(index_codecs[1], Crc32cCodec)
        ):
            return None
        inner = tuple(sharding.codecs)
        if not inner or not _little_endian(inner[0]):
            return None
        rest = inner[1:]
        chunk_crc = bool(rest) and isinstance(rest[-1], Crc32cCodec)
        rest = rest[:-1] if chunk_crc else rest
        if len(rest) > 1 or (rest and not isinstance(rest[0], BloscCodec)):
            return None
        return cls(
            shape=tuple(array.shape),
            dtype=np.dtype(array.dtype),
            shard_shape=tuple(array.shards),
            chunk_shape=tuple(sharding.chunk_shape),
            compressed=bool(rest),
            chunk_crc=chunk_crc,
        )


def _little_endian(codec: object) -> bool:
    return isinstance(codec, BytesCodec) and (codec.endian is None or codec.endian.value == "little")


def read_index(fd: int, *, size: int, fmt: ShardFormat, where: str) -> np.ndarray:
    """The index of an open shard file of ``size`` bytes, its length and crc32c checked (the hot path:
    entries are checked one by one as they are used, :func:`check_entry`). See :func:`index_entries`."""
    n = fmt.index_nbytes
    if size < n:
        raise CorruptShardError(f"{where}: {size} bytes, shorter than its {n}-byte shard index (truncated)")
    return index_entries(os.pread(fd, n, size - n), size=size, fmt=fmt, where=where)


def index_entries(raw: bytes, *, size: int, fmt: ShardFormat, where: str) -> np.ndarray:
    """A shard file's index, uint64 ``[n_chunks, 2]`` of ``(offset, nbytes)``, once its crc32c matches.

    ``raw`` is the file's last ``fmt.index_nbytes`` bytes, ``size`` the file's length in bytes and
    ``where`` names it in errors. Raises :class:`CorruptShardError` when the file is shorter than its
    index or the index's crc32c does not match.
    """
    n = fmt.index_nbytes
    if size < n or len(raw) != n:
        raise CorruptShardError(f"{where}: {size} bytes, shorter than its {n}-byte shard index (truncated)")
    if google_crc32c.value(raw) != _CRC32C_RESIDUE:  # crc32c(index ‖ its crc32c) is a constant
        stored, computed = int.from_bytes(raw[-4:], "little"), google_crc32c.value(raw[:-4])
        raise CorruptShardError(
            f"{where}: shard index crc32c mismatch (stored {stored:#010x}, computed {computed:#010x})"
        )
    return np.frombuffer(raw, dtype="<u8", count=2 * fmt.n_chunks).reshape(-1, 2)


def check_entry(offset: int, nbytes: int, *, data_end: int, fmt: ShardFormat, where: str) -> bool:
    """Whether index entry ``(offset, nbytes)`` holds a chunk (``False``: never written, both halves
    empty); raises :class:`CorruptShardError` when it is half empty, reaches past ``data_end`` (the
    index's first byte) or cannot hold a chunk (shorter than a blosc header, or, uncompressed, not one
    chunk long). Scalar: what a reader checks per chunk it reads."""
    if offset == EMPTY or nbytes == EMPTY:
        if offset != nbytes:
            raise CorruptShardError(f"{where}: shard index entry ({offset}, {nbytes}) is half empty")
        return False
    crc = 4 * fmt.chunk_crc
    short = nbytes < crc + _BLOSC_HEADER if fmt.compressed else nbytes != fmt.chunk_nbytes + crc
    if offset + nbytes > data_end or short:
        raise CorruptShardError(
            f"{where}: shard index entry (offset {offset}, {nbytes} bytes) lies outside the {data_end}-byte "
            "data region or cannot hold a chunk"
        )
    return True


def check_index(raw: bytes, *, size: int, fmt: ShardFormat, where: str) -> np.ndarray:
    """The fully checked index of a shard file (``verify``): :func:`index_entries`, then every entry.

    Besides the crc32c and length: no entry is half empty, reaches into the index or past the file,
    is shorter than a chunk can be (uncompressed: other than one chunk), or overlaps another entry.
    Raises :class:`CorruptShardError` naming ``where``.
    """
    entries = index_entries(raw, size=size, fmt=fmt, where=where)
    offset, nbytes = entries[:, 0], entries[:, 1]
    empty_off, empty_len = offset == EMPTY, nbytes == EMPTY
    if (empty_off != empty_len).any():
        raise CorruptShardError(
            f"{where}: shard index entry {int(np.argmax(empty_off != empty_len))} is half empty"
        )
    used = ~empty_off
    off, length = offset[used], nbytes[used]
    data_end = np.uint64(size - fmt.index_nbytes)
    crc = 4 * fmt.chunk_crc
    bad = (off > data_end) | (length > data_end - np.minimum(off, data_end))
    if fmt.compressed:
        bad |= length < crc + _BLOSC_HEADER
    else:
        bad |= length != fmt.chunk_nbytes + crc
    if bad.any():
        k = int(np.flatnonzero(used)[np.argmax(bad)])
        raise CorruptShardError(
            f"{where}: shard index entry {k} (offset {int(offset[k])}, {int(nbytes[k])} bytes) lies outside "
            f"the {int(data_end)}-byte data region or cannot hold a chunk"
        )
    order = np.argsort(off, kind="stable")
    if len(order) > 1 and (off[order[1:]] < off[order[:-1]] + length[order[:-1]]).any():
        raise CorruptShardError(f"{where}: shard index entries overlap (chunks share bytes)")
    return entries


def check_chunk(data: bytes, *, fmt: ShardFormat, where: str) -> memoryview:
    """Check one stored inner chunk without decompressing it; returns its payload (no crc32c) as a view.

    The crc32c (layouts with one), then the blosc header's sizes (decoded size = one chunk, compressed
    size = the payload) or, uncompressed, the length. Raises :class:`CorruptShardError` naming ``where``.
    """
    n = len(data) - 4 if fmt.chunk_crc else len(data)
    # crc32c(payload ‖ its crc32c, little-endian) is a constant: one pass, no copy of the payload
    if fmt.chunk_crc and google_crc32c.value(data) != _CRC32C_RESIDUE:
        stored, computed = int.from_bytes(data[-4:], "little"), google_crc32c.value(data[:-4])
        raise CorruptShardError(
            f"{where}: chunk crc32c mismatch (stored {stored:#010x}, computed {computed:#010x})"
        )
    if fmt.compressed:
        # blosc1 header: version, versionlz, flags, typesize, then uint32 LE nbytes, blocksize, cbytes
        nbytes, cbytes = int.from_bytes(data[4:8], "little"), int.from_bytes(data[12:16], "little")
        if n < _BLOSC_HEADER or nbytes != fmt.chunk_nbytes or cbytes != n:
            raise CorruptShardError(
                f"{where}: blosc header says {nbytes} bytes from {cbytes}, "
                f"expected {fmt.chunk_nbytes} from {n}"
            )
    elif n != fmt.chunk_nbytes:
        raise CorruptShardError(f"{where}: {n} bytes stored, expected {fmt.chunk_nbytes}")
    return memoryview(data)[:n]


def decode_chunk(data: bytes, *, fmt: ShardFormat, where: str) -> bytes | memoryview:
    """The decoded bytes (``fmt.chunk_nbytes``, little-endian values) of one stored inner chunk.

    :func:`check_chunk`, then blosc decompression (when compressed) and the decoded length; raises
    :class:`CorruptShardError` naming ``where`` otherwise.
    """
    payload = check_chunk(data, fmt=fmt, where=where)
    if not fmt.compressed:
        return payload
    try:
        out = blosc.decompress(payload)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise CorruptShardError(f"{where}: chunk does not decode ({exc})") from exc
    if len(out) != fmt.chunk_nbytes:
        raise CorruptShardError(f"{where}: chunk decodes to {len(out)} bytes, expected {fmt.chunk_nbytes}")
    return out


def shard_key(array: zarr.Array, shard: tuple[int, ...]) -> str:
    """The store key of shard ``shard`` (grid coordinates) of ``array``, e.g. ``s2/10m/data/c/3/0/0/0/0``."""
    key = array.metadata.encode_chunk_key(shard)
    return f"{array.store_path.path}/{key}" if array.store_path.path else key


def shard_exists(array: zarr.Array, shard: tuple[int, ...]) -> bool:
    """Whether shard ``shard`` of ``array`` has a file (object) in the array's store (any store kind)."""
    return bool(sync(array.store_path.store.exists(shard_key(array, shard))))


def sample_shard(array: zarr.Array, sample: int) -> tuple[int, ...]:
    """Grid coordinates of the shard of ``array`` holding sample (first-dimension index) ``sample``.

    A corpus shard spans every other dimension whole (all periods, bands, the whole tile).
    """
    return (sample // (array.shards or array.chunks)[0], *([0] * (array.ndim - 1)))
