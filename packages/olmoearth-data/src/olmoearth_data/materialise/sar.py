"""Sentinel-1 RTC backscatter: linear power to decibels, after compositing.

The corpus stores dB (docs/corpus-schema.md, a deviation: the reference stored linear γ⁰ and
converted in its H5 step). Compositing runs on the linear values, so first-valid picks exactly the
pixels the reference picked; the conversion is per pixel and keeps NaN (nodata) as NaN.
"""

from __future__ import annotations

import numpy as np

#: Floor applied before the logarithm (the reference's), so zero or negative power gives −100 dB.
POWER_FLOOR = 1e-10


def linear_to_db(data: np.ndarray) -> np.ndarray:
    """``10·log10(max(x, 1e-10))`` of linear power ``[..., H, W]``, float32; NaN stays NaN."""
    with np.errstate(invalid="ignore"):
        out = 10.0 * np.log10(np.fmax(data.astype(np.float64), POWER_FLOOR))
    out[np.isnan(data)] = np.nan
    return out.astype(np.float32)
