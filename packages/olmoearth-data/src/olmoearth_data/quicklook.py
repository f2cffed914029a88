"""A PNG a person can look at: one sample's Sentinel-2 RGB for every period, plus its maps."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import zarr

from olmoearth_data.modalities import registry_from_dict

RGB = ("B04", "B03", "B02")


def _rgb(data: np.ndarray, bands: list[str], *, lo: float, hi: float) -> np.ndarray:
    """``[C, H, W]`` uint16 reflectance ×1e4 → ``[H, W, 3]`` float in [0, 1], stretched ``lo..hi``."""
    rgb = np.stack([data[bands.index(b)] for b in RGB], -1).astype(np.float32)
    empty = (rgb == 0).all(-1)
    rgb = np.clip((rgb - lo) / max(hi - lo, 1.0), 0, 1) ** (1 / 1.4)
    rgb[empty] = (1.0, 0.0, 1.0)  # nodata in magenta, so gaps are visible, not black
    return rgb


def quicklook(corpus: Path | str, *, sample: int, out: Path | str) -> Path:
    """Write a grid of the sample's S2 RGB per period (absent periods marked) and its static maps."""
    group = zarr.open_group(str(corpus), mode="r")
    specs = {s.name: s for s in registry_from_dict(dict(group.attrs["olmoearth"])["modalities"])}
    tile_id = str(group["tile_id"][sample])
    starts = group["period_start"][sample]
    maps = [s for s in specs.values() if not s.is_multitemporal]
    n_rows = 3 + (1 if maps else 0)
    fig, axes = plt.subplots(n_rows, 4, figsize=(12, 3 * n_rows))
    for ax in axes.ravel():
        ax.axis("off")
    if "sentinel2_l2a" in specs:
        s2 = specs["sentinel2_l2a"]
        bands = list(s2.bandsets[0].bands)
        present = group["sentinel2_l2a/present"][sample]
        data = group["sentinel2_l2a/10m/data"][sample]  # [12, C, H, W]
        # One stretch for the whole year (2nd–98th percentile of valid RGB), so months compare.
        valid = data[present][:, [bands.index(b) for b in RGB]]
        valid = valid[valid > 0]
        lo, hi = np.percentile(valid, [2, 98]) if valid.size else (0.0, 3000.0)
        for t in range(12):
            ax = axes.ravel()[t]
            day = np.datetime64(int(starts[t]), "D") if np.issubdtype(starts.dtype, np.integer) else starts[t]
            if present[t]:
                ax.imshow(_rgb(data[t], bands, lo=float(lo), hi=float(hi)))
                ax.set_title(f"{str(day)[:10]}", fontsize=8)
            else:
                ax.set_title(f"{str(day)[:10]}: absent", fontsize=8, color="grey")
    for j, spec in enumerate(maps[:4]):
        ax = axes[-1, j]
        arr = group[f"{spec.name}/{spec.bandsets[0].name}/data"][sample]
        ax.imshow(arr.max(axis=0) if spec.name == "openstreetmap_raster" else arr[0], cmap="viridis")
        ax.set_title(spec.name, fontsize=8)
    fig.suptitle(f"sample {sample}: {tile_id}")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
