"""Per-band normalisation statistics of a corpus, streamed with dask.

Mean and standard deviation per band over *valid* pixels of *present* periods only, in the stored
space (Sentinel-1 is stored in dB, which is what the model sees). Results are stored in each
modality group's attributes (``norm_stats``) and read back by the loader, which applies the recipe's
2σ formula ``x' = (x − (μ − 2σ)) / 4σ``. Sums run in float64 so millions of pixels lose nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import zarr

from olmoearth_data.cube.layout import consolidate, nodata_fill
from olmoearth_data.missing import SampleStatus
from olmoearth_data.modalities import ModalitySpec, registry_from_dict

#: Modalities normalised with a fixed min/max instead of computed stats (recipe §2: predefined table).
PREDEFINED_RANGES: dict[str, tuple[float, float]] = {
    "openstreetmap_raster": (0.0, 1.0),
    "worldcereal": (0.0, 100.0),
}


def _bandset_sums(group: zarr.Group, spec: ModalitySpec, bs_name: str, complete: np.ndarray) -> list[Any]:
    arr = da.from_zarr(group[f"{spec.name}/{bs_name}/data"]).astype(np.float64)
    present = np.asarray(group[f"{spec.name}/present"][:], dtype=bool) & complete.reshape(
        (-1,) + (1,) * (group[f"{spec.name}/present"].ndim - 1)
    )
    fill = nodata_fill(spec)
    band_axis = 2 if spec.is_multitemporal else 1
    if isinstance(fill, float) and np.isnan(fill):
        pixel_valid = ~da.isnan(arr).all(axis=band_axis, keepdims=True)
    elif spec.nodata is None:
        pixel_valid = da.ones_like(arr[:, :, :1] if spec.is_multitemporal else arr[:, :1], dtype=bool)
    else:
        pixel_valid = ~(arr == fill).all(axis=band_axis, keepdims=True)
    valid = pixel_valid & present.reshape((*present.shape, 1, 1, 1))
    values = da.where(valid, arr, 0.0)
    reduce_axes = tuple(i for i in range(arr.ndim) if i != band_axis)
    count = da.broadcast_to(valid, arr.shape).sum(axis=reduce_axes)
    return [values.sum(axis=reduce_axes), (values * values).sum(axis=reduce_axes), count]


def compute_norm_stats(path: Path | str) -> dict[str, dict[str, dict[str, float]]]:
    """``{modality: {band: {mean, std, count}}}`` over complete samples; stored into the corpus too."""
    group = zarr.open_group(str(path), mode="r+")
    specs = registry_from_dict(dict(group.attrs["olmoearth"])["modalities"])
    complete = np.asarray(group["status"][:]) == SampleStatus.COMPLETE
    lazy = {
        (spec.name, bs.name): _bandset_sums(group, spec, bs.name, complete)
        for spec in specs
        if spec.name not in PREDEFINED_RANGES
        for bs in spec.bandsets
    }
    (computed,) = dask.compute(lazy)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for spec in specs:
        if spec.name in PREDEFINED_RANGES:
            lo, hi = PREDEFINED_RANGES[spec.name]
            out[spec.name] = {b: {"min": lo, "max": hi} for b in spec.bands}
            continue
        stats: dict[str, dict[str, float]] = {}
        for bs in spec.bandsets:
            total, total_sq, count = computed[(spec.name, bs.name)]
            for j, band in enumerate(bs.bands):
                n = float(count[j])
                mean = total[j] / n if n else 0.0
                var = max(total_sq[j] / n - mean * mean, 0.0) if n else 0.0
                stats[band] = {"mean": float(mean), "std": float(np.sqrt(var)), "count": n}
        out[spec.name] = stats
        group[spec.name].attrs["norm_stats"] = stats
    for name, ranges in out.items():
        if name in PREDEFINED_RANGES:
            group[name].attrs["norm_stats"] = ranges
    consolidate(path)
    return out
