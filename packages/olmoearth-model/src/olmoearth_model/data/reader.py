"""Read crops of corpus samples straight from Zarr (no dask), as the batch schema wants them.

One :class:`CorpusReader` per loader worker: it opens the store itself (spawned workers must not
inherit zarr/fsspec threads) and reads only the crop window and the timesteps it is asked for.
Every bandset is brought to the 10 m token grid: 20/40 m pixels repeated, 2.5 m max-pooled 4×4.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr

from olmoearth_data.missing import SampleStatus
from olmoearth_data.modalities import BandSet, ModalitySpec, registry_from_dict
from olmoearth_model.batch import MISSING_VALUE


@dataclass(frozen=True)
class Crop:
    """A square window on the 10 m grid, ``size`` px from (``y0``, ``x0``), and a period window."""

    y0: int
    x0: int
    size: int
    periods: tuple[int, ...]  # period indices; ≥ 12 means padding (always missing)


class CorpusReader:
    """Random-access reads of normalised crops from a built corpus."""

    def __init__(self, path: Path | str, *, modalities: Sequence[str] | None = None) -> None:
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
        self.norm = {s.name: self._norm_params(s) for s in specs}

    def norm_stats(self) -> dict[str, dict]:
        """The corpus's stored per-band stats of every modality read (for release exports)."""
        return {s.name: dict(self.group[s.name].attrs.get("norm_stats", {})) for s in self.specs}

    @property
    def complete_indices(self) -> np.ndarray:
        """Rows the loader may use: complete samples (dropped and pending rows are skipped)."""
        return np.flatnonzero(self.status == SampleStatus.COMPLETE)

    def _norm_params(self, spec: ModalitySpec) -> tuple[np.ndarray, np.ndarray]:
        """Per-band (offset, scale) with ``x' = (x − offset) / scale`` (recipe §2)."""
        stats = dict(self.group[spec.name].attrs.get("norm_stats", {}))
        if not stats:
            raise ValueError(
                f"corpus {self.path} has no norm stats for {spec.name}: "
                f"run `olmoearth-data stats {self.path}` first"
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

    def _read_modality(self, index: int, spec: ModalitySpec, crop: Crop) -> np.ndarray:
        periods = crop.periods if spec.is_multitemporal else (0,)
        present = self.present[spec.name][index]
        present = present if spec.is_multitemporal else np.array([present])
        out = np.full((crop.size, crop.size, len(periods), spec.num_bands), MISSING_VALUE, dtype=np.float32)
        real = [(i, p) for i, p in enumerate(periods) if p < len(present) and present[p]]
        if not real:
            return out
        offset, scale = self.norm[spec.name]
        for bs, band_idx in zip(spec.bandsets, spec.bandset_band_indices()):
            values, valid = self._read_bandset(index, spec, bs, crop, [p for _, p in real])
            norm = (values - offset[band_idx]) / scale[band_idx]  # [H, W, T', C_bs]
            norm = np.where(valid[..., None], norm, np.float32(MISSING_VALUE))
            for j, (i, _) in enumerate(real):
                out[:, :, i, band_idx[0] : band_idx[-1] + 1] = norm[:, :, j]
        return out

    def _read_bandset(
        self, index: int, spec: ModalitySpec, bs: BandSet, crop: Crop, periods: list[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stored values of ``periods`` on the 10 m crop: float32 ``[H, W, T, C]`` and valid ``[H, W, T]``."""
        arr = self._arrays[(spec.name, bs.name)]
        k = bs.scale_to_base  # stored px per 10 m px: 2 → 20 m, 0.25 → 2.5 m
        if k >= 1:
            k = int(k)
            ys, ye = crop.y0 // k, (crop.y0 + crop.size - 1) // k + 1
            xs, xe = crop.x0 // k, (crop.x0 + crop.size - 1) // k + 1
        else:
            f = round(1 / k)
            ys, ye, xs, xe = crop.y0 * f, (crop.y0 + crop.size) * f, crop.x0 * f, (crop.x0 + crop.size) * f
        if spec.is_multitemporal:
            raw = np.stack([arr[index, p, :, ys:ye, xs:xe] for p in periods])  # [T, C, h, w]
        else:
            raw = arr[index, :, ys:ye, xs:xe][None]
        valid = _valid_pixels(raw, spec)  # [T, h, w]
        raw = raw.astype(np.float32)
        if k >= 1 and k != 1:
            raw = raw.repeat(k, axis=-2).repeat(k, axis=-1)
            valid = valid.repeat(k, axis=-2).repeat(k, axis=-1)
            oy, ox = crop.y0 - ys * k, crop.x0 - xs * k
            raw = raw[..., oy : oy + crop.size, ox : ox + crop.size]
            valid = valid[..., oy : oy + crop.size, ox : ox + crop.size]
        elif k < 1:
            f = round(1 / k)
            t, c = raw.shape[:2]
            raw = raw.reshape(t, c, crop.size, f, crop.size, f).max(axis=(3, 5))
            valid = valid.reshape(t, crop.size, f, crop.size, f).any(axis=(2, 4))
        return raw.transpose(2, 3, 0, 1), valid.transpose(1, 2, 0)


def _valid_pixels(raw: np.ndarray, spec: ModalitySpec) -> np.ndarray:
    """``[T, h, w]``: some band of the bandset holds data (``raw`` is ``[T, C, h, w]``)."""
    if spec.nodata is None:
        return np.ones((raw.shape[0], *raw.shape[2:]), dtype=bool)
    if spec.nodata == "nan":
        return ~np.isnan(raw).all(axis=1)
    return ~(raw == spec.nodata).all(axis=1)
