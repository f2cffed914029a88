"""``olmoearth-data verify``: check every complete sample's shards, name the damaged samples, reset them.

One dask task per shard reads that shard's file of every ``data`` array and checks it byte by byte
(:mod:`olmoearth_data.shardfile`): the index's crc32c and bounds, every stored chunk's crc32c (layouts
with one; older layouts have each chunk decoded instead, which catches less) and blosc header, and
that a complete sample's present periods have data at all — a missing shard file, or a sample whose
chunks are all gone, is damage (zarr would read fill values). Only complete samples are judged;
damage in a shard's pending or dropped rows is not reported.

:func:`reset_damaged` turns a report into a rebuild: damaged samples go back to ``pending`` (with the
damage as ``status_reason``) and shard files whose index is unreadable are moved to
``<corpus>.quarantine/`` (zarr reads a shard before rewriting it, so a broken index would stop the
rebuild). An ordinary ``olmoearth-data build`` rerun then rebuilds exactly the shards holding them,
and ``olmoearth-data stats`` must be rerun afterwards (the loader refuses stats of another sample set).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import numpy as np
import zarr
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import LocalStore

from olmoearth_data.missing import SampleStatus
from olmoearth_data.modalities import ModalitySpec, registry_from_dict
from olmoearth_data.shardfile import (
    CorruptShardError,
    ShardFormat,
    check_chunk,
    check_index,
    decode_chunk,
    shard_key,
)

#: Shards handed to dask per ``compute`` call (bounded graph on any corpus size).
WAVE_SHARDS = 64


@dataclass(frozen=True)
class SampleDamage:
    """One damaged complete sample: its row, tile and every problem found (``modality/bandset: …``)."""

    sample: int
    tile_id: str
    problems: tuple[str, ...]


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify_corpus` checked and found.

    Attributes:
        corpus: the store checked.
        complete: complete samples judged.
        shard_files: shard files read (every data array's, of shards holding complete samples).
        chunks: stored inner chunks checked.
        damaged: damaged complete samples, by row.
        unreadable: store keys of shard files whose index is unreadable (quarantined by a reset).
    """

    corpus: str
    complete: int
    shard_files: int
    chunks: int
    damaged: tuple[SampleDamage, ...]
    unreadable: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.damaged

    def to_dict(self) -> dict[str, Any]:
        """JSON form: the counts, ``damaged_samples`` (sample, tile_id, problems), unreadable files."""
        return {
            "corpus": self.corpus,
            "complete_samples": self.complete,
            "shard_files_checked": self.shard_files,
            "chunks_checked": self.chunks,
            "damaged_samples": [
                {"sample": d.sample, "tile_id": d.tile_id, "problems": list(d.problems)} for d in self.damaged
            ],
            "unreadable_shard_files": list(self.unreadable),
        }


@dataclass
class ShardCheck:
    """What checking shard files found: problems by corpus row, unreadable files, files and chunks read."""

    problems: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    unreadable: list[str] = field(default_factory=list)
    files: int = 0
    chunks: int = 0


@dataclass(frozen=True)
class DataTarget:
    """One data array to check: ``spec``'s bandset ``bandset``; ``fmt`` None: not a layout decoded here."""

    spec: ModalitySpec
    bandset: str
    array: zarr.Array
    fmt: ShardFormat | None
    periods_per_chunk: int

    @classmethod
    def of(cls, array: zarr.Array, *, spec: ModalitySpec, bandset: str) -> DataTarget:
        fmt = ShardFormat.from_zarr(array)
        per = fmt.chunk_shape[1] if fmt is not None and spec.is_multitemporal else 1
        return cls(spec, bandset, array, fmt, per)


def _targets(group: zarr.Group, specs: Sequence[ModalitySpec]) -> list[DataTarget]:
    return [
        DataTarget.of(group[f"{spec.name}/{bs.name}/data"], spec=spec, bandset=bs.name)
        for spec in specs
        for bs in spec.bandsets
    ]


def _get(arr: zarr.Array, key: str) -> bytes | None:
    buf = sync(arr.store_path.store.get(key, prototype=default_buffer_prototype()))
    return None if buf is None else buf.to_bytes()


def check_shard_file(
    t: DataTarget,
    *,
    shard: int,
    start: int,
    complete: np.ndarray,
    keep: np.ndarray,
    decode: bool = False,
    out: ShardCheck | None = None,
) -> ShardCheck:
    """Check the file of shard ``shard`` (first row ``start``) of one data array; returns ``out``.

    ``complete`` bool ``[n]`` marks the shard's rows to judge, ``keep`` bool ``[n, T]`` (``T`` = 12
    monthly, 1 static) their present periods. Problems go to ``out.problems[row]`` as
    ``"modality/bandset: what"``. ``decode``: decompress chunks that have a crc32c too.
    """
    out = ShardCheck() if out is None else out
    name = f"{t.spec.name}/{t.bandset}"
    n = len(complete)
    key = shard_key(t.array, (shard, *([0] * (t.array.ndim - 1))))
    need = keep if t.spec.nodata is not None else np.zeros_like(keep)  # rows whose data must be stored
    data = _get(t.array, key)
    if data is None:
        for i in np.flatnonzero(need.any(axis=1)):
            out.problems[int(start + i)].append(f"{name}: shard file {key} missing")
        return out
    out.files += 1
    if t.fmt is None:  # a layout the checks do not know: let zarr check what it can
        try:
            t.array[start : start + n]
        except ValueError as exc:
            for i in np.flatnonzero(complete):
                out.problems[int(start + i)].append(f"{name}: {key}: {exc}")
        return out
    fmt = t.fmt
    try:
        index = check_index(data[-fmt.index_nbytes :], size=len(data), fmt=fmt, where=key)
    except CorruptShardError as exc:
        out.unreadable.append(key)
        for i in np.flatnonzero(complete):
            out.problems[int(start + i)].append(f"{name}: {exc}")
        return out
    groups = -(-keep.shape[1] // t.periods_per_chunk)
    stored = np.zeros((n, groups), dtype=bool)  # rows × period groups with a chunk of data
    for lin in np.flatnonzero(index[:, 0] != np.uint64(2**64 - 1)):
        coords = np.unravel_index(int(lin), fmt.chunks_per_shard)
        rows = slice(int(coords[0]) * fmt.chunk_shape[0], (int(coords[0]) + 1) * fmt.chunk_shape[0])
        group = int(coords[1]) if t.spec.is_multitemporal else 0
        offset, nbytes = (int(v) for v in index[lin])
        out.chunks += 1
        try:
            chunk = data[offset : offset + nbytes]
            # with a chunk crc32c, decompressing adds nothing the checksum misses: header checks only
            check = decode_chunk if decode or not fmt.chunk_crc else check_chunk
            check(chunk, fmt=fmt, where=f"{key} chunk {int(lin)}")
        except CorruptShardError as exc:
            for i in range(rows.start, min(rows.stop, n)):
                if complete[i]:
                    out.problems[int(start + i)].append(f"{name}: {exc}")
            continue
        stored[rows, group] = True
    for i in np.flatnonzero(need.any(axis=1)):
        periods = np.flatnonzero(need[i])
        lost = [int(p) for p in periods if not stored[i, p // t.periods_per_chunk]]
        if lost:
            what = f"period(s) {lost}" if t.spec.is_multitemporal else "its map"
            out.problems[int(start + i)].append(f"{name}: no data stored for present {what} (chunks missing)")
    return out


def _check_shard(
    targets: list[DataTarget],
    *,
    shard: int,
    start: int,
    complete: np.ndarray,
    keeps: dict[str, np.ndarray],
    decode: bool,
) -> ShardCheck:
    out = ShardCheck()
    for t in targets:
        check_shard_file(
            t, shard=shard, start=start, complete=complete, keep=keeps[t.spec.name], decode=decode, out=out
        )
    return out


def verify_corpus(
    path: Path | str, *, scheduler: str | None = None, workers: int | None = None, decode: bool = False
) -> VerifyReport:
    """Check every complete sample's shard files in ``path``; see the module doc for what is checked.

    ``scheduler``: a dask scheduler address (``tcp://…``), or a local scheduler name (``threads``, the
    default; ``processes``; ``synchronous``) run with ``workers`` workers (default: the CPU count).
    ``decode``: also decompress chunks that carry a crc32c (slower; catches nothing the checksum
    misses). Returns a :class:`VerifyReport`; nothing is written.
    """
    group = zarr.open_group(str(path), mode="r")
    specs = registry_from_dict(dict(group.attrs["olmoearth"])["modalities"])
    status = np.asarray(group["status"][:])
    complete = status == SampleStatus.COMPLETE
    n = len(status)
    keeps = {}
    for spec in specs:  # complete samples' present frames: [samples, T]
        present = np.asarray(group[f"{spec.name}/present"][:], dtype=bool).reshape(n, -1)
        keeps[spec.name] = present & complete[:, None]
    targets = _targets(group, specs)
    per = int(dict(group.attrs["olmoearth"])["samples_per_shard"])
    shards = [s for s in range(-(-n // per)) if complete[s * per : (s + 1) * per].any()]

    def tasks() -> Iterator[Any]:
        for s in shards:
            a, b = s * per, min((s + 1) * per, n)
            rows = {k: v[a:b] for k, v in keeps.items()}
            check = dask.delayed(_check_shard, pure=False)
            yield check(targets, shard=s, start=a, complete=complete[a:b], keeps=rows, decode=decode)

    problems: dict[int, list[str]] = defaultdict(list)
    unreadable: list[str] = []
    files = chunks = 0
    batch: list[Any] = []
    for task in [*tasks(), None]:
        if task is not None:
            batch.append(task)
        if batch and (task is None or len(batch) == WAVE_SHARDS):
            for res in _compute(batch, scheduler=scheduler, workers=workers):
                for i, p in res.problems.items():
                    problems[i].extend(p)
                unreadable += res.unreadable
                files, chunks = files + res.files, chunks + res.chunks
            batch = []
    tile_ids = group["tile_id"][:] if problems else []
    damaged = tuple(SampleDamage(i, str(tile_ids[i]), tuple(problems[i])) for i in sorted(problems))
    return VerifyReport(str(path), int(complete.sum()), files, chunks, damaged, tuple(unreadable))


def _compute(batch: list[Any], *, scheduler: str | None, workers: int | None) -> tuple[ShardCheck, ...]:
    if scheduler and "://" in scheduler:
        from dask.distributed import Client

        with Client(scheduler):
            return dask.compute(*batch)
    return dask.compute(*batch, scheduler=scheduler or "threads", num_workers=workers or os.cpu_count())


def reset_damaged(path: Path | str, *, report: VerifyReport) -> list[int]:
    """Make ``report``'s damaged samples ``pending`` so a ``build`` rerun rebuilds them; returns their rows.

    Shard files with an unreadable index are moved to ``<corpus>.quarantine/<key>`` first (a local
    store only). Every reset row gets ``status_reason`` ``"damaged: <first problem>"``. Afterwards the
    norm stats cover another sample set: rerun ``olmoearth-data stats`` once the build is done. Not
    while a build writes to the corpus (``status`` shards are rewritten whole).
    """
    if not report.damaged:
        return []
    group = zarr.open_group(str(path), mode="r+")
    store = group.store_path.store
    if report.unreadable and not isinstance(store, LocalStore):
        raise ValueError(f"corpus {path} is not on a local disk: move {list(report.unreadable)} away by hand")
    quarantine = Path(f"{str(path).rstrip('/')}.quarantine")
    for key in report.unreadable:
        src = Path(store.root) / key
        if src.exists():
            dst = quarantine / key
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    rows = np.array([d.sample for d in report.damaged], dtype=np.int64)
    group["status_reason"].oindex[rows] = np.array(
        [f"damaged: {d.problems[0]}" for d in report.damaged], dtype=object
    )
    group["status"].oindex[rows] = np.full(len(rows), int(SampleStatus.PENDING), dtype=np.int8)
    return rows.tolist()
