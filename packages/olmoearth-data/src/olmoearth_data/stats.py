"""Per-band normalisation statistics of a corpus, streamed over shard-aligned sample blocks.

Mean and standard deviation per band over *valid* pixels of *present* periods only, in the stored
space (Sentinel-1 is stored in dB, which is what the model sees). Results are stored in each
modality group's attributes (``norm_stats``) and read back by the loader, which applies the recipe's
2σ formula ``x' = (x − (μ − 2σ)) / 4σ``.

Why blocks of whole shards and not a dask array over the stored chunks: the data arrays' inner
chunks are small (32×32 px × 12 periods, the loader's read unit), so a chunk-wise dask graph is
~150k tasks for 16 samples and its scheduling, not the arithmetic, took the time. Here one dask task
reads one block of whole shards (one decode pass, ≤ ``block_bytes`` decoded) and reduces it to
per-band ``(count, mean, M2)``; blocks are computed a wave at a time and merged with Chan et al.'s
parallel update, so memory and graph size stay bounded on any corpus size.

Exactness: integer bands (≤ 16 bit) are summed exactly in int64 and their block ``M2`` formed from
exact integers; float bands use a two-pass mean/``M2`` per block, summed in float64. Merging
``(n, mean, M2)`` is numerically stable (no ``E[x²] − E[x]²`` over millions of pixels).

Damage stops the run (nothing is stored): a shard file missing where complete samples have data
(zarr would read it as fill values) raises :class:`~olmoearth_data.shardfile.MissingShardError`, a
checksum mismatch :class:`~olmoearth_data.shardfile.CorruptShardError`; both say to run ``olmoearth-data
verify``. The stats record the complete samples they cover (:mod:`olmoearth_data.coverage`), so the
loader can refuse them once that set changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dask
import numpy as np
import zarr
from dask.delayed import Delayed

from olmoearth_data.coverage import COVERAGE_ATTR, stats_coverage
from olmoearth_data.cube.layout import consolidate, nodata_fill
from olmoearth_data.missing import SampleStatus
from olmoearth_data.modalities import ModalitySpec, registry_from_dict
from olmoearth_data.shardfile import (
    CorruptShardError,
    MissingShardError,
)

#: Modalities normalised with a fixed min/max instead of computed stats (recipe §2: predefined table).
PREDEFINED_RANGES: dict[str, tuple[float, float]] = {
    "openstreetmap_raster": (0.0, 1.0),
    "worldcereal": (0.0, 100.0),
}
#: Decoded bytes one task reads at most (it always takes at least one whole shard).
BLOCK_BYTES = 64 * 2**20
#: Blocks handed to dask per ``compute`` call; their partial moments are merged before the next wave.
WAVE_BLOCKS = 32


def _merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Chan et al.'s merge of two ``[3, C]`` float64 ``(count, mean, M2)`` moment sets."""
    na, ma, m2a = a
    nb, mb, m2b = b
    n = na + nb
    with np.errstate(invalid="ignore", divide="ignore"):
        d = mb - ma
        frac = np.where(n > 0, nb / n, 0.0)
        mean = ma + d * frac
        m2 = m2a + m2b + d * d * na * frac
    return np.stack([n, np.where(n > 0, mean, 0.0), np.where(n > 0, m2, 0.0)])


def _exact_int_moments(frames: np.ndarray, n_invalid: int, fill: int) -> np.ndarray:
    """``[3, C]`` moments of ``frames`` ``[F, C, H, W]`` (≤ 16-bit ints) minus ``n_invalid`` fill pixels.

    Invalid pixels hold ``fill`` in every band (that is what makes them invalid), so their
    contribution is subtracted instead of masking: no gather, no float copy. int64 cannot overflow:
    a square is < 2³² and the caller passes < 2³¹ values per band.
    """
    n_bands = frames.shape[1]
    n = frames.shape[0] * frames.shape[2] * frames.shape[3] - n_invalid
    sums = frames.sum(axis=(0, 2, 3), dtype=np.int64)
    squares = np.einsum("fchw,fchw->c", frames, frames, dtype=np.int64)
    out = np.zeros((3, n_bands))
    if n == 0:
        return out
    for c in range(n_bands):
        s = int(sums[c]) - n_invalid * fill
        q = int(squares[c]) - n_invalid * fill * fill
        out[:, c] = (n, s / n, (n * q - s * s) / n)  # exact integers, one rounding each
    return out


def _float_moments(frames: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """``[3, C]`` two-pass moments of float ``frames`` ``[F, C, H, W]`` over ``valid`` ``[F, H, W]``.

    Each band also skips its own NaNs, so ``count`` can differ between bands.

    Residuals stay in the stored precision (a float64 copy of the block costs more than the maths)
    and are squared and summed in float64; they are taken about the mean rounded to that precision,
    so ``n·δ²`` (``δ`` = that rounding) is subtracted to give ``M2`` about the float64 mean.
    """
    out = np.zeros((3, frames.shape[1]))
    for c in range(frames.shape[1]):
        v = (frames[:, c] if valid is None else frames[:, c][valid]).ravel()
        # A pixel stays in while any band is valid, so one band can be NaN inside it (S1: VH
        # missing where VV is not); that band's own NaNs are nodata, not values.
        v = v[~np.isnan(v)]
        if v.size:
            mean = float(v.mean(dtype=np.float64))
            rounded = v.dtype.type(mean)
            d = v - rounded
            delta = mean - float(rounded)
            out[:, c] = (v.size, mean, np.einsum("i,i->", d, d, dtype=np.float64) - v.size * delta * delta)
    return out


def _block_moments(
    arr: zarr.Array, *, spec: ModalitySpec, start: int, stop: int, keep: np.ndarray, corpus: str = "?"
) -> np.ndarray:
    """``[3, C]`` per-band ``(count, mean, M2)`` of samples ``start:stop`` of ``arr``.

    ``keep`` ``[stop − start, T]`` (``T`` = 1 for static) marks the frames (sample, period) to count:
    complete samples' present periods. A pixel of a kept frame counts unless every band is nodata.
    """
    x = _read_checked(arr, spec=spec, start=start, stop=stop, keep=keep, corpus=corpus)
    frames = x.reshape(keep.size, *x.shape[-3:])  # [n·T, C, H, W]: a view, periods are contiguous
    if not keep.all():
        frames = frames[keep.ravel()]
    fill = nodata_fill(spec)
    if frames.shape[0] == 0:
        return np.zeros((3, frames.shape[1]))
    invalid: np.ndarray | None = None
    if spec.nodata is not None:
        is_fill = np.isnan if isinstance(fill, float) and np.isnan(fill) else (lambda b: b == fill)
        invalid = is_fill(frames[:, 0])
        for c in range(1, frames.shape[1]):
            invalid &= is_fill(frames[:, c])
    if frames.dtype.kind in "iu" and frames.dtype.itemsize <= 2 and frames[:, 0].size < 2**31:
        n_invalid = 0 if invalid is None else int(np.count_nonzero(invalid))
        return _exact_int_moments(frames, n_invalid, int(fill))
    return _float_moments(frames, None if invalid is None else ~invalid)


def _read_checked(
    arr: zarr.Array, *, spec: ModalitySpec, start: int, stop: int, keep: np.ndarray, corpus: str
) -> np.ndarray:
    """``arr[start:stop]`` after checking its shard files (:func:`~olmoearth_data.verify.check_shard_file`:
    checksums, bounds, missing files or chunks of kept frames); damage raises, naming file and sample."""
    from olmoearth_data.verify import DataTarget, check_shard_file

    per = (arr.shards or arr.chunks)[0]
    target = DataTarget.of(arr, spec=spec, bandset=arr.path.split("/")[-2])
    hint = f"run `olmoearth-data verify {corpus}` to list every damaged sample"
    for first in range(start, stop, per):
        rows = keep[first - start : min(first + per, stop) - start]
        if not rows.any():
            continue
        found = check_shard_file(
            target, shard=first // per, start=first, complete=rows.any(axis=1), keep=rows
        )
        for row, problems in sorted(found.problems.items()):
            error = MissingShardError if "missing" in problems[0] else CorruptShardError
            raise error(f"corpus {corpus}: sample {row} is damaged: {problems[0]}; {hint}")
    try:
        return arr[start:stop]
    except ValueError as exc:  # zarr: "Stored and computed checksum do not match" (changed since checked)
        raise CorruptShardError(
            f"corpus {corpus}: {arr.path}, samples {start}..{stop - 1}: {exc}; {hint}"
        ) from exc


def _blocks(arr: zarr.Array, keep: np.ndarray, block_bytes: int) -> Iterator[tuple[int, int]]:
    """Shard-aligned ``[start, stop)`` sample ranges of ≤ ``block_bytes`` (≥ one shard) with kept frames."""
    per_shard = (arr.shards or arr.chunks)[0]
    sample_bytes = arr.nbytes // max(arr.shape[0], 1)
    step = per_shard * max(1, block_bytes // max(sample_bytes * per_shard, 1))
    for start in range(0, arr.shape[0], step):
        stop = min(start + step, arr.shape[0])
        if keep[start:stop].any():  # nothing to count (absent modality, failed samples): skip the read
            yield start, stop


def _waves(jobs: Iterator[tuple[str, str, Delayed]], size: int) -> Iterator[list[tuple[str, str, Delayed]]]:
    wave: list[tuple[str, str, Delayed]] = []
    for job in jobs:
        wave.append(job)
        if len(wave) == size:
            yield wave
            wave = []
    if wave:
        yield wave


def compute_norm_stats(
    path: Path | str, *, block_bytes: int = BLOCK_BYTES
) -> dict[str, dict[str, dict[str, float]]]:
    """``{modality: {band: {mean, std, count}}}`` over complete samples; stored into the corpus too.

    ``mean``/``std`` are float64 in stored units over valid pixels of present periods; ``count`` is
    that pixel count. Predefined-range modalities get ``{band: {min, max}}``. Each modality group
    also gets ``norm_stats_coverage`` (:func:`~olmoearth_data.coverage.stats_coverage`). Each task decodes one
    block of whole shards, ≤ ``block_bytes`` decoded bytes unless one shard is larger, so memory is
    about (dask threads) × 2 blocks whatever the corpus size; the graph holds :data:`WAVE_BLOCKS`.
    """
    if block_bytes < 1:
        raise ValueError(f"block_bytes must be ≥ 1, got {block_bytes}")
    group = zarr.open_group(str(path), mode="r+")
    specs = registry_from_dict(dict(group.attrs["olmoearth"])["modalities"])
    status = np.asarray(group["status"][:])
    complete = status == SampleStatus.COMPLETE
    computed = [spec for spec in specs if spec.name not in PREDEFINED_RANGES]
    keeps = {}
    for spec in computed:  # one read of each presence mask, shared by the modality's bandsets
        present = np.asarray(group[f"{spec.name}/present"][:], dtype=bool).reshape(len(complete), -1)
        keeps[spec.name] = present & complete[:, None]  # [samples, T]
    moments = {(s.name, bs.name): np.zeros((3, len(bs.bands))) for s in computed for bs in s.bandsets}

    def jobs() -> Iterator[tuple[str, str, Delayed]]:
        for spec in computed:
            keep = keeps[spec.name]
            for bs in spec.bandsets:
                arr = group[f"{spec.name}/{bs.name}/data"]
                for start, stop in _blocks(arr, keep, block_bytes):
                    task = dask.delayed(_block_moments, pure=False)(
                        arr, spec=spec, start=start, stop=stop, keep=keep[start:stop], corpus=str(path)
                    )
                    yield spec.name, bs.name, task

    for wave in _waves(jobs(), WAVE_BLOCKS):
        results = dask.compute(*(task for _, _, task in wave))
        for (name, bs_name, _), part in zip(wave, results, strict=True):
            moments[(name, bs_name)] = _merge(moments[(name, bs_name)], part)

    out: dict[str, dict[str, dict[str, float]]] = {}
    for spec in specs:
        if spec.name in PREDEFINED_RANGES:
            lo, hi = PREDEFINED_RANGES[spec.name]
            out[spec.name] = {b: {"min": lo, "max": hi} for b in spec.bands}
        else:
            out[spec.name] = {}
            for bs in spec.bandsets:
                n, mean, m2 = moments[(spec.name, bs.name)]
                for j, band in enumerate(bs.bands):
                    std = np.sqrt(max(m2[j], 0.0) / n[j]) if n[j] else 0.0
                    out[spec.name][band] = {"mean": float(mean[j]), "std": float(std), "count": float(n[j])}
        group[spec.name].attrs["norm_stats"] = out[spec.name]
        group[spec.name].attrs[COVERAGE_ATTR] = stats_coverage(status)
    consolidate(path)
    return out
