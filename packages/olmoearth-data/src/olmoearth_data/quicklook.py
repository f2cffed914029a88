"""A PNG a person can look at: one sample's Sentinel-2 RGB for every period, plus every static map.

Each map has a colourbar and its nodata in grey; an absent period or map says so, with its reason.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import zarr

from olmoearth_data.missing import MissingReason
from olmoearth_data.modalities import ModalitySpec, registry_from_dict

RGB = ("B04", "B03", "B02")
COLUMNS = 4
#: Colour maps per static map: class codes get a qualitative map, quantities a sequential one.
CMAPS = {"worldcover": "tab20", "cdl": "tab20", "srtm": "terrain", "wri_canopy_height_map": "Greens",
         "worldcereal": "YlOrBr", "openstreetmap_raster": "Greys"}  # fmt: skip


def _rgb(data: np.ndarray, bands: list[str], *, lo: float, hi: float) -> np.ndarray:
    """``[C, H, W]`` uint16 reflectance ×1e4 → ``[H, W, 3]`` float in [0, 1], stretched ``lo..hi``."""
    rgb = np.stack([data[bands.index(b)] for b in RGB], -1).astype(np.float32)
    empty = (rgb == 0).all(-1)
    rgb = np.clip((rgb - lo) / max(hi - lo, 1.0), 0, 1) ** (1 / 1.4)
    rgb[empty] = (1.0, 0.0, 1.0)  # nodata in magenta, so gaps are visible, not black
    return rgb


def _absent(ax: plt.Axes, title: str, reason: int) -> None:
    ax.set_title(title, fontsize=8, color="grey")
    ax.text(0.5, 0.5, f"absent\n({MissingReason(int(reason)).name.lower().replace('_', ' ')})",
            ha="center", va="center", fontsize=9, color="grey", transform=ax.transAxes)  # fmt: skip


def _map_image(spec: ModalitySpec, arr: np.ndarray) -> tuple[np.ndarray, str]:
    """``[C, H, W]`` map → the ``[H, W]`` image shown (nodata masked) and what it shows."""
    bands = list(spec.bandsets[0].bands)
    if spec.name == "openstreetmap_raster":  # 30 binary categories: show where any feature is
        return np.ma.masked_equal(arr.max(axis=0), 0), f"any of {len(bands)} categories"
    image = arr[0].astype(np.float32)
    masked = np.ma.masked_invalid(image)
    if spec.nodata not in (None, "nan"):
        masked = np.ma.masked_where(arr[0] == spec.nodata, image)
    label = bands[0] if len(bands) > 1 else spec.units.split(" (")[0]
    return masked, f"{label} of {len(bands)} bands" if len(bands) > 1 else label


def quicklook(corpus: Path | str, *, sample: int, out: Path | str) -> Path:
    """Write a grid of the sample's S2 RGB per period and of every static map; returns ``out``.

    ``sample`` is the row (0 ≤ sample < number of samples); an ``IndexError`` names the range.
    """
    group = zarr.open_group(str(corpus), mode="r")
    n_samples = group["tile_id"].shape[0]
    if not 0 <= sample < n_samples:  # a negative index would silently show a sample from the end
        raise IndexError(f"sample {sample} out of range: {corpus} holds samples 0..{n_samples - 1}")
    specs = {s.name: s for s in registry_from_dict(dict(group.attrs["olmoearth"])["modalities"])}
    tile_id = str(group["tile_id"][sample])
    starts = group["period_start"][sample]
    maps = [s for s in specs.values() if not s.is_multitemporal]
    s2_rows = 3 if "sentinel2_l2a" in specs else 0
    n_rows = max(s2_rows + -(-len(maps) // COLUMNS), 1)
    fig, axes = plt.subplots(n_rows, COLUMNS, figsize=(3.2 * COLUMNS, 3 * n_rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    if s2_rows:
        s2 = specs["sentinel2_l2a"]
        bands = list(s2.bandsets[0].bands)
        present = group["sentinel2_l2a/present"][sample]
        reasons = group["sentinel2_l2a/reason"][sample]
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
                ax.set_title(f"S2 {str(day)[:10]}", fontsize=8)
            else:
                _absent(ax, f"S2 {str(day)[:10]}", reasons[t])
    for j, spec in enumerate(maps):
        ax = axes.ravel()[s2_rows * COLUMNS + j]
        if not bool(group[f"{spec.name}/present"][sample]):
            _absent(ax, spec.name, group[f"{spec.name}/reason"][sample])
            continue
        image, what = _map_image(spec, group[f"{spec.name}/{spec.bandsets[0].name}/data"][sample])
        cmap = plt.get_cmap(CMAPS.get(spec.name, "viridis")).copy()
        cmap.set_bad("lightgrey")  # nodata
        shown = ax.imshow(image, cmap=cmap, interpolation="nearest")
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
        ax.set_title(f"{spec.name}\n{what}", fontsize=8)
    fig.suptitle(f"sample {sample}: {tile_id}  (magenta / grey: nodata)")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
