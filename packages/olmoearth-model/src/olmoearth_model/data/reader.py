"""Read crops of corpus samples straight from Zarr (no dask), as the batch schema wants them.

One :class:`CorpusReader` per loader worker: it opens the store itself (spawned workers must not
inherit zarr/fsspec threads) and reads only the crop window and the timesteps it is asked for: one
read per bandset covering the crop's present periods, decoded by the direct shard reader
(``shards.py``; zarr-python's per-call and per-chunk costs exceed the data's for small crops), with
zarr slicing as the fallback for stores it does not decode. Values are normalised at the stored
resolution, then brought to the 10 m token grid: 20/40 m pixels repeated, 2.5 m max-pooled 4×4.

Damage is an error, never data: checksums and bounds are checked on every read, a complete sample's
present data whose shard file is missing is refused (``required`` reads), and norm stats computed
over another set of complete samples than the corpus has now are refused when the reader opens
(:mod:`olmoearth_data.coverage`). Errors name the corpus, sample, bandset and file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from olmoearth_data.coverage import COVERAGE_ATTR, check_stats_coverage
from olmoearth_data.missing import SampleStatus
from olmoearth_data.modalities import BandSet, ModalitySpec, registry_from_dict
from olmoearth_data.shardfile import (
    CorpusDamageError,
    CorruptShardError,
    MissingShardError,
    sample_shard,
    shard_exists,
)
from olmoearth_model.batch import MISSING_VALUE
from olmoearth_model.data.shards import ReadCounters, ShardedArray


@dataclass(frozen=True)
class Crop:
    """A square window on the 10 m grid, ``size`` px from (``y0``, ``x0``), and a period window."""

    y0: int
    x0: int
    size: int
    periods: tuple[int, ...]  # period indices; ≥ 12 means padding (always missing)


class CorpusReader:
    """Random-access reads of normalised crops from a built corpus."""

    def __init__(
        self, path: Path | str, *, modalities: Sequence[str] | None = None, direct: bool = True
    ) -> None:
        """Open ``path``; ``modalities`` selects some of the corpus's; ``direct=False`` reads through zarr."""
        self.path = str(path)
        self.group = zarr.open_group(self.path, mode="r")
        meta = dict(self.group.attrs["olmoearth"])
        specs = registry_from_dict(meta["modalities"])
        if modalities is not None:
            by_name = {s.name: s for s in specs}
            unknown = [m for m in modalities if m not in by_name]
            if unknown:
                raise ValueError(f"corpus {self.path} has no modality {unknown}; it has {list(by_name)}")
            specs = tuple(by_name[m] for m in modalities)
        self.specs: tuple[ModalitySpec, ...] = specs
        self.status = np.asarray(self.group["status"][:])
        self.period_start = np.asarray(self.group["period_start"][:])  # int days since epoch or datetime64
        self.present = {s.name: np.asarray(self.group[f"{s.name}/present"][:], dtype=bool) for s in specs}
        self._arrays = {
            (s.name, bs.name): self.group[f"{s.name}/{bs.name}/data"] for s in specs for bs in s.bandsets
        }
        self._direct = {
            key: ShardedArray.from_zarr(arr) if direct else None for key, arr in self._arrays.items()
        }
        self.norm = {s.name: self._norm_params(s) for s in specs}
        # per bandset: (offset, 1 / scale) shaped [C_bs, 1, 1] to broadcast over [T, C_bs, h, w]
        self._affine = {
            (s.name, bs.name): (
                self.norm[s.name][0][idx].reshape(-1, 1, 1),
                (1.0 / self.norm[s.name][1][idx]).astype(np.float32).reshape(-1, 1, 1),
            )
            for s in specs
            for bs, idx in zip(s.bandsets, s.bandset_band_indices())
        }

    @property
    def direct_bandsets(self) -> list[tuple[str, str]]:
        """``(modality, bandset)`` pairs decoded by the direct shard reader (the rest go through zarr)."""
        return [key for key, direct in self._direct.items() if direct is not None]

    @property
    def counters(self) -> ReadCounters:
        """Chunks, disk bytes and decoded bytes of every direct read so far (all bandsets summed)."""
        total = ReadCounters()
        for direct in self._direct.values():
            if direct is not None:
                for key, value in vars(direct.counters).items():
                    setattr(total, key, getattr(total, key) + value)
        return total

    def close(self) -> None:
        """Close the shard files the direct readers keep open."""
        for direct in self._direct.values():
            if direct is not None:
                direct.close()

    def norm_stats(self) -> dict[str, dict]:
        """The corpus's stored per-band stats of every modality read (for release exports)."""
        return {s.name: dict(self.group[s.name].attrs.get("norm_stats", {})) for s in self.specs}

    @property
    def complete_indices(self) -> np.ndarray:
        """Rows the loader may use: complete samples (dropped and pending rows are skipped)."""
        return np.flatnonzero(self.status == SampleStatus.COMPLETE)

    def _norm_params(self, spec: ModalitySpec) -> tuple[np.ndarray, np.ndarray]:
        """Per-band (offset, scale) with ``x' = (x − offset) / scale`` (recipe §2)."""
        attrs = self.group[spec.name].attrs
        stats = dict(attrs.get("norm_stats", {}))
        if not stats:
            raise ValueError(
                f"corpus {self.path} has no norm stats for {spec.name}: "
                f"run `olmoearth-data stats {self.path}` first"
            )
        if any("mean" in s for s in stats.values()):  # computed from samples (not a predefined range)
            check_stats_coverage(
                recorded=attrs.get(COVERAGE_ATTR), status=self.status, corpus=self.path, modality=spec.name
            )
        offset, scale = [], []
        for band in spec.bands:
            s = stats[band]
            if "min" in s:  # predefined range
                offset.append(s["min"])
                scale.append(s["max"] - s["min"])
            else:  # computed: lo = μ − 2σ, hi = μ + 2σ
                std = s["std"] if s["std"] > 0 else 1.0
                offset.append(s["mean"] - 2 * std)
                scale.append(4 * std)
        return np.asarray(offset, np.float32), np.asarray(scale, np.float32)

    def timestamps(self, index: int, periods: Sequence[int]) -> np.ndarray:
        """int64 ``[T, 3]`` (day, month0, year) of each period's start; padding repeats the last period."""
        starts = self.period_start[index].astype("datetime64[D]")
        out = np.empty((len(periods), 3), dtype=np.int64)
        for i, p in enumerate(periods):
            d = starts[min(p, len(starts) - 1)].astype(object)
            out[i] = (d.day, d.month - 1, d.year)
        return out

    def read(self, index: int, crop: Crop) -> dict[str, np.ndarray]:
        """Per modality float32 ``[H, W, T_m, C_m]`` normalised, ``MISSING_VALUE`` where missing."""
        return {spec.name: self._read_modality(index, spec, crop) for spec in self.specs}

    def read_stored(self, index: int, crop: Crop) -> dict[tuple[str, str], np.ndarray]:
        """The stored values :meth:`read` decodes, nothing else done (the benchmarks' read floor).

        ``(modality, bandset)`` → ``[T', C, h, w]`` in the storage dtype, the present periods of the
        crop on the bandset's own grid; absent bandsets are left out.
        """
        out = {}
        for spec in self.specs:
            periods = self._present_periods(index, spec, crop)
            for bs in spec.bandsets if periods else ():
                window = _stored_window(bs, crop)
                out[(spec.name, bs.name)] = self._read_window(
                    index, spec, bs, [p for _, p in periods], window
                )
        return out

    def _present_periods(self, index: int, spec: ModalitySpec, crop: Crop) -> list[tuple[int, int]]:
        """``(slot in the crop's T, period)`` of the crop's periods that ``spec`` has for this sample."""
        if not spec.is_multitemporal:
            return [(0, 0)] if self.present[spec.name][index] else []
        present = self.present[spec.name][index]
        return [(i, p) for i, p in enumerate(crop.periods) if p < len(present) and present[p]]

    def _read_modality(self, index: int, spec: ModalitySpec, crop: Crop) -> np.ndarray:
        n_t = len(crop.periods) if spec.is_multitemporal else 1
        out = np.full((crop.size, crop.size, n_t, spec.num_bands), MISSING_VALUE, dtype=np.float32)
        real = self._present_periods(index, spec, crop)
        if not real:
            return out
        slots = [i for i, _ in real]
        # the crop's periods are contiguous, so present ones usually are too: a slice avoids a scatter
        t_out = slice(slots[0], slots[-1] + 1) if slots[-1] - slots[0] + 1 == len(slots) else slots
        for bs, band_idx in zip(spec.bandsets, spec.bandset_band_indices()):
            norm = self._read_bandset(index, spec, bs, crop, [p for _, p in real])  # [T', C_bs, H, W]
            out[:, :, t_out, band_idx[0] : band_idx[-1] + 1] = norm.transpose(2, 3, 0, 1)
        return out

    def _read_bandset(
        self, index: int, spec: ModalitySpec, bs: BandSet, crop: Crop, periods: list[int]
    ) -> np.ndarray:
        """Normalised ``periods`` on the 10 m crop: float32 ``[T, C, H, W]``, MISSING_VALUE if missing."""
        k = bs.scale_to_base  # stored px per 10 m px: 2 → 20 m, 0.25 → 2.5 m
        window = _stored_window(bs, crop)
        raw = self._read_window(index, spec, bs, periods, window)  # [T, C, h, w] stored dtype
        valid = _valid_pixels(raw, spec)  # [T, h, w]
        if k < 1:  # 2.5 m → 10 m: max-pool 4×4 (presence rasters: a feature anywhere in the pixel)
            f = round(1 / k)
            raw = _max_pool(raw, f)
            valid = _max_pool(valid, f)
        offset, inv_scale = self._affine[(spec.name, bs.name)]
        # normalised at the stored resolution (4× / 16× fewer values at 20 / 40 m); ``raw`` is a
        # fresh array, so float data are normalised in place
        norm = raw.astype(np.float32, copy=False)
        norm -= offset
        norm *= inv_scale
        norm[np.broadcast_to(~valid[:, None], norm.shape)] = MISSING_VALUE
        if k > 1:  # repeat coarse pixels onto the 10 m crop (one gather per axis)
            k = int(k)
            iy = np.arange(crop.y0, crop.y0 + crop.size) // k - window[0]
            ix = np.arange(crop.x0, crop.x0 + crop.size) // k - window[2]
            norm = norm[:, :, iy][:, :, :, ix]
        return norm

    def _read_window(
        self,
        index: int,
        spec: ModalitySpec,
        bs: BandSet,
        periods: list[int],
        window: tuple[int, int, int, int],
    ) -> np.ndarray:
        """Stored values ``[T, C, h, w]`` of ``periods`` (static: ``T = 1``) in ``window`` (ys, ye, xs, xe).

        One read covers first…last requested period; absent periods in between are never-written
        chunks (fill value), which cost an index entry and no decoding.
        """
        key = (spec.name, bs.name)
        ys, ye, xs, xe = window
        c = len(bs.bands)
        lo, hi = (min(periods), max(periods) + 1) if spec.is_multitemporal else (0, 1)
        time_box = [(lo, hi)] if spec.is_multitemporal else []
        box = [(index, index + 1), *time_box, (0, c), (ys, ye), (xs, xe)]
        # a complete sample's present periods were written: a missing shard file is damage, not fill
        # (a present period has a valid pixel, i.e. a non-nodata value, in every bandset it comes with)
        required = spec.nodata is not None and self.status[index] == SampleStatus.COMPLETE
        try:
            raw = self._read_box(key, box, required=required)[0]
        except CorpusDamageError as exc:
            tile = self.group["tile_id"][index] if "tile_id" in self.group else "?"
            raise type(exc)(
                f"corpus {self.path}: sample {index} ({tile}) {spec.name}/{bs.name} is damaged: {exc}; "
                f"run `olmoearth-data verify {self.path}` to list every damaged sample (--reset to rebuild)"
            ) from exc
        if not spec.is_multitemporal:
            return raw[None]
        if hi - lo != len(periods):
            raw = raw[[p - lo for p in periods]]
        return raw

    def _read_box(self, key: tuple[str, str], box: list[tuple[int, int]], *, required: bool) -> np.ndarray:
        """Stored values of ``box`` of bandset ``key``: direct reader, else zarr (checked alike)."""
        direct = self._direct[key]
        if direct is not None:
            return direct.read(box, required=required)
        arr = self._arrays[key]
        if required and not shard_exists(arr, sample_shard(arr, box[0][0])):
            raise MissingShardError(f"{arr.path}: shard file of sample {box[0][0]} missing")
        try:
            return np.asarray(arr[tuple(slice(a, b) for a, b in box)])
        except ValueError as exc:  # zarr: "Stored and computed checksum do not match"
            raise CorruptShardError(f"{arr.path}: {exc}") from exc


def _stored_window(bs: BandSet, crop: Crop) -> tuple[int, int, int, int]:
    """``(ys, ye, xs, xe)``: the stored pixels of ``bs`` that cover the 10 m crop."""
    k = bs.scale_to_base  # stored px per 10 m px: 2 → 20 m, 0.25 → 2.5 m
    if k >= 1:
        k = int(k)
        return (crop.y0 // k, (crop.y0 + crop.size - 1) // k + 1,
                crop.x0 // k, (crop.x0 + crop.size - 1) // k + 1)  # fmt: skip
    f = round(1 / k)
    return crop.y0 * f, (crop.y0 + crop.size) * f, crop.x0 * f, (crop.x0 + crop.size) * f


def _max_pool(a: np.ndarray, f: int) -> np.ndarray:
    """Max over ``f × f`` blocks of the last two axes (bool: any). ``[…, f·h, f·w]`` → ``[…, h, w]``.

    Elementwise maxima of strided views: ~15× faster than ``reshape(…).max(axis=(-3, -1))``. Planes
    that are all zero (most OSM categories in most crops) are skipped when the dtype has no
    negatives, since their pooled value is zero.
    """
    lead, (h, w) = a.shape[:-2], a.shape[-2:]
    planes = a.reshape(-1, h, w)
    out = np.zeros((planes.shape[0], h // f, w // f), dtype=a.dtype)
    signed = a.dtype.kind in "if"
    todo = (
        np.arange(planes.shape[0]) if signed else np.flatnonzero(planes.reshape(len(planes), -1).any(axis=1))
    )
    if todo.size:
        src = planes[todo] if todo.size < len(planes) else planes
        m = np.maximum(src[..., 0::f], src[..., 1::f]) if f > 1 else src.copy()
        for i in range(2, f):
            np.maximum(m, src[..., i::f], out=m)
        n = np.maximum(m[:, 0::f], m[:, 1::f]) if f > 1 else m
        for i in range(2, f):
            np.maximum(n, m[:, i::f], out=n)
        out[todo] = n
    return out.reshape(*lead, h // f, w // f)


def _valid_pixels(raw: np.ndarray, spec: ModalitySpec) -> np.ndarray:
    """``[T, h, w]``: some band of the bandset holds data (``raw`` is ``[T, C, h, w]``).

    Float bandsets (nodata NaN) need *every* band: a NaN cannot be normalised or embedded, so a pixel
    with one NaN band (e.g. S1 VV valid, VH NaN) is missing as a whole.
    """
    if spec.nodata is None:
        return np.ones((raw.shape[0], *raw.shape[2:]), dtype=bool)
    if spec.nodata == "nan":
        return ~np.isnan(raw).any(axis=1)
    return ~(raw == spec.nodata).all(axis=1)
