"""Per-item pixel adjustments applied before compositing.

Sentinel-2 processing baseline ≥ 04.00 (from 2022-01-25) adds a +1000 offset (``BOA_ADD_OFFSET``) to
L2A reflectances. We remove it so all scenes share the older scale. **Deviation from the reference
as used in 2025:** it clipped at 1000 before subtracting, which turned every valid pixel with
DN ≤ 1000 (water, shadow) into 0 — nodata — so first-valid compositing replaced them with another
scene. We keep such pixels valid at 1 (the upstream fix of 2026-03).
"""

from __future__ import annotations

import numpy as np
import pystac

BOA_OFFSET = 1000


def processing_baseline(item: pystac.Item) -> tuple[int, int] | None:
    """``s2:processing_baseline`` ("04.00") as (4, 0); None when the item does not say."""
    value = item.properties.get("s2:processing_baseline")
    if not value:
        return None
    major, _, minor = str(value).partition(".")
    return (int(major), int(minor or 0))


def has_boa_offset(item: pystac.Item) -> bool:
    baseline = processing_baseline(item)
    return baseline is not None and baseline >= (4, 0)


def harmonise_sentinel2(item: pystac.Item, data: np.ndarray) -> np.ndarray:
    """Remove the +1000 offset of baseline ≥ 04.00 from uint16 DNs ``[C, H, W]``; 0 (nodata) stays 0."""
    if not has_boa_offset(item):
        return data
    out = data.astype(np.int32) - BOA_OFFSET
    out = np.where(data == 0, 0, np.maximum(out, 1))
    return out.astype(data.dtype)
