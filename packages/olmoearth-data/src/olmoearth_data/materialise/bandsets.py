"""The one bandset-compositing path of the STAC and tile-index materialisers.

One period of one modality: every bandset's first-valid merge of the period's chosen items
(:func:`~olmoearth_data.composite.first_valid.first_valid`), with the modality's adjustments — per item
before merging (Sentinel-2 harmonisation: first valid must compare harmonised values), per composite
after merging (Sentinel-1 linear → dB; WorldCereal values above 100 → 0), as the source declares them
(``SourceSpec.item_transform``, ``SourceSpec.composite_transform``). The monthly path calls it once per
period, the static and tile-index paths once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pystac

from olmoearth_data.composite.first_valid import ReadAhead, first_valid
from olmoearth_data.cube.layout import nodata_fill
from olmoearth_data.materialise.harmonise import harmonise_sentinel2
from olmoearth_data.materialise.sar import linear_to_db
from olmoearth_data.modalities import ModalitySpec
from olmoearth_data.samples import Sample
from olmoearth_data.sources import SourceSpec
from olmoearth_data.stac.retry import RetryPolicy

#: WorldCereal classes above this are not a crop fraction (254 = not cropland): stored as 0.
WORLDCEREAL_MAX_VALUE = 100


def worldcereal_values(data: np.ndarray, *, fill: float | int) -> np.ndarray:
    """WorldCereal composite with values above :data:`WORLDCEREAL_MAX_VALUE` (not nodata) set to 0."""
    data[(data > WORLDCEREAL_MAX_VALUE) & (data != fill)] = 0
    return data


#: Per-item pixel adjustments (``SourceSpec.item_transform``), applied before merging.
ITEM_TRANSFORMS: dict[str, Callable[[pystac.Item, np.ndarray], np.ndarray]] = {
    "harmonise_sentinel2": harmonise_sentinel2,
}

#: Per-period adjustments (``SourceSpec.composite_transform``), applied to a bandset's composite after
#: merging (first valid must choose pixels on the source's own values; e.g. Sentinel-1 is merged linear,
#: stored in dB).
COMPOSITE_TRANSFORMS: dict[str, Callable[[np.ndarray, float | int], np.ndarray]] = {
    "linear_to_db": lambda data, fill: linear_to_db(data),
    "worldcereal_values": lambda data, fill: worldcereal_values(data, fill=fill),
}


def composite_bandsets(
    arrays: dict[str, np.ndarray],
    t: int,
    items: Sequence[pystac.Item],
    *,
    sample: Sample,
    spec: ModalitySpec,
    source: SourceSpec,
    sign: Callable[[str], str],
    retry: RetryPolicy | None,
    fallback: Sequence[pystac.Item] = (),
    read_ahead: ReadAhead | None = None,
) -> tuple[list[str], set[str]]:
    """Write period ``t``'s first-valid composite of ``items`` into every bandset of ``arrays``
    (``[T, C, H, W]`` each, nodata where no item has data); ``fallback``: the period's other items, read
    only for optional bands ``items`` left empty; ``read_ahead``: read items side by side (same output).
    Returns the ids of the items used (in order) and the
    ids of those whose read failed (a bad file)."""
    fill = nodata_fill(spec)
    used: list[str] = []
    failed: set[str] = set()
    post = COMPOSITE_TRANSFORMS[source.composite_transform] if source.composite_transform else None
    pre = ITEM_TRANSFORMS[source.item_transform] if source.item_transform else None
    for bs in spec.bandsets:
        arrays[bs.name][t] = fill
        if not items:
            continue
        assets = [source.asset_for(b) for b in bs.bands]
        merged = first_valid(
            items,
            assets=assets,
            geobox=sample.tile.geobox(pixel_size_m=bs.pixel_size_m),
            dtype=spec.dtype,
            nodata=fill,
            resampling=next(b.resampling.value for b in source.bands if b.band == bs.bands[0]),
            sign=sign,
            transform_item=pre,
            read_nodata=source.read_nodata,
            retry=retry,
            optional_assets=[a for a in assets if a in source.optional_assets],
            fallback_items=fallback,
            read_ahead=read_ahead,
        )
        arrays[bs.name][t] = merged.data if post is None else post(merged.data, fill)
        used.extend(i for i in merged.used_item_ids if i not in used)
        failed.update(merged.failed_item_ids)
    return used, failed
