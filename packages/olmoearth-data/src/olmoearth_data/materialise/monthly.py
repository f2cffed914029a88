"""Monthly first-valid composites of one multitemporal modality for one sample.

Per period: the search's items placed by their instant (an item with ``datetime: null`` by the
midpoint of its range, :mod:`olmoearth_data.item_time`), the greedy coverage choice of them, and the
first-valid merge of the chosen items; a source's optional bands (Landsat L2SR has no thermal) fill
independently, from the chosen items and then from the period's other items that carry them
(:mod:`olmoearth_data.composite.first_valid`). A service outage during a read raises
:class:`~olmoearth_data.outages.SourceUnavailableError` out of here: the sample stays pending.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import pystac
import pystac_client

from olmoearth_data.composite.coverage import select_covering
from olmoearth_data.composite.first_valid import first_valid, valid_mask
from olmoearth_data.cube.layout import empty_arrays, nodata_fill
from olmoearth_data.item_time import place_items
from olmoearth_data.materialise.harmonise import harmonise_sentinel2
from olmoearth_data.materialise.sar import linear_to_db
from olmoearth_data.missing import MissingReason
from olmoearth_data.modalities import ModalitySpec
from olmoearth_data.results import ModalityResult
from olmoearth_data.samples import Sample
from olmoearth_data.sources import SourceSpec
from olmoearth_data.stac.catalog import RetryPolicy
from olmoearth_data.stac.search import SearchCache, search_sample

log = logging.getLogger(__name__)

#: Per-item pixel adjustments by modality, applied before merging.
ITEM_TRANSFORMS: dict[str, Callable[[pystac.Item, np.ndarray], np.ndarray]] = {
    "sentinel2_l2a": harmonise_sentinel2,
}

#: Per-period adjustments by modality, applied to a bandset's composite after merging (first valid
#: must choose pixels on the source's own values; e.g. Sentinel-1 is merged linear, stored in dB).
COMPOSITE_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sentinel1": linear_to_db,
}


def materialise_monthly(
    *,
    sample: Sample,
    spec: ModalitySpec,
    source: SourceSpec,
    client: pystac_client.Client,
    stac_url: str,
    sign: Callable[[str], str],
    cache: SearchCache | None,
    retry: RetryPolicy | None = None,
) -> ModalityResult:
    """Composite every period of ``sample`` for one monthly modality.

    Returns arrays ``[12, C, H, W]`` per bandset (storage dtype, nodata where empty), presence and
    a :class:`MissingReason` per period, and the ids of the items that contributed. ``retry``: how a
    failed item read is retried (None: not retried) before the item is skipped (a bad file) or
    :class:`~olmoearth_data.outages.SourceUnavailableError` is raised (the network or a service).
    """
    periods = sample.periods
    searched = search_sample(
        client=client, source=source, tile=sample.tile, periods=periods, stac_url=stac_url, cache=cache
    )
    fill = nodata_fill(spec)
    n_periods = len(periods)
    arrays = empty_arrays(spec, n_periods=n_periods)
    present = np.zeros(n_periods, dtype=bool)
    reason = np.full(n_periods, int(MissingReason.NO_ITEMS), dtype=np.uint8)
    used_ids: list[list[str]] = []
    for t, period_items in enumerate(searched):
        # An item with a bad file counts as absent (a network failure past the retries raises instead): the
        # coverage is chosen again without it, so an item the first choice passed over fills its gap.
        # Each round drops at least one item, so this ends; without failures it runs once.
        skipped: set[str] = set()
        placed = place_items(period_items.items, period=period_items.period)
        while True:
            chosen = select_covering([d for d in placed if d["id"] not in skipped], tile=sample.tile)
            items = [pystac.Item.from_dict(d, preserve_dict=True) for d in chosen]
            ids = {i.id for i in items}
            fallback = [
                pystac.Item.from_dict(d, preserve_dict=True)
                for d in placed
                if source.optional_assets and d["id"] not in ids and d["id"] not in skipped
            ]
            used, failed = _composite_period(
                arrays, t, items, fallback, sample=sample, spec=spec, source=source, sign=sign, retry=retry
            )
            if not failed:
                break
            skipped |= failed
            again = select_covering([d for d in placed if d["id"] not in skipped], tile=sample.tile)
            same = [d["id"] for d in again] == [i.id for i in items if i.id not in failed]
            if same and not failed & set(used):
                break  # this round's composite already is that of the items without the failed ones
        has_data = any(valid_mask(arrays[bs.name][t], nodata=fill).any() for bs in spec.bandsets)
        present[t] = has_data
        if has_data:
            reason[t] = MissingReason.PRESENT
        elif items and {i.id for i in items} <= skipped:
            reason[t] = MissingReason.READ_FAILED
        elif items:
            reason[t] = MissingReason.ALL_NODATA
        used_ids.append(used)
    return ModalityResult(arrays=arrays, present=present, reason=reason, item_ids=used_ids)


def _composite_period(
    arrays: dict[str, np.ndarray],
    t: int,
    items: list[pystac.Item],
    fallback: list[pystac.Item],
    *,
    sample: Sample,
    spec: ModalitySpec,
    source: SourceSpec,
    sign: Callable[[str], str],
    retry: RetryPolicy | None,
) -> tuple[list[str], set[str]]:
    """Write period ``t``'s first-valid composite of ``items`` into every bandset of ``arrays``
    (``[T, C, H, W]`` each, nodata where no item has data); ``fallback``: the period's other items, read
    only for optional bands ``items`` left empty. Returns the ids of the items used and the ids of
    those whose read failed (a bad file)."""
    fill = nodata_fill(spec)
    used: list[str] = []
    failed: set[str] = set()
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
            transform_item=ITEM_TRANSFORMS.get(spec.name),
            read_nodata=source.read_nodata,
            retry=retry,
            optional_assets=[a for a in assets if a in source.optional_assets],
            fallback_items=fallback,
        )
        post = COMPOSITE_TRANSFORMS.get(spec.name)
        arrays[bs.name][t] = merged.data if post is None else post(merged.data)
        used.extend(i for i in merged.used_item_ids if i not in used)
        failed.update(merged.failed_item_ids)
    return used, failed
