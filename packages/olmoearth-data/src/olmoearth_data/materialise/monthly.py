"""Monthly first-valid composites of one multitemporal modality for one sample.

Per period: the search's items placed by their instant (an item with ``datetime: null`` by the
midpoint of its range, :mod:`olmoearth_data.item_time`), the greedy coverage choice of them, and the
first-valid merge of the chosen items; a source's optional bands (Landsat L2SR has no thermal) fill
independently, from the chosen items and then from the period's other items that carry them
(:mod:`olmoearth_data.composite.first_valid`), through the one bandset path
(:mod:`~olmoearth_data.materialise.bandsets`). The periods are independent: they are searched and
composited as read tasks of the worker's context, side by side (:mod:`.context`); each writes only its
own period. A service outage during a read raises
:class:`~olmoearth_data.outages.SourceUnavailableError` out of here: the sample stays pending.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import numpy as np
import pystac
import pystac_client

from olmoearth_data.composite.coverage import select_covering
from olmoearth_data.composite.first_valid import valid_mask
from olmoearth_data.cube.layout import empty_arrays, nodata_fill
from olmoearth_data.item_time import place_items
from olmoearth_data.materialise.bandsets import composite_bandsets
from olmoearth_data.materialise.context import MaterialiseContext, legacy_context
from olmoearth_data.missing import MissingReason
from olmoearth_data.modalities import ModalitySpec
from olmoearth_data.results import ModalityResult
from olmoearth_data.samples import Sample
from olmoearth_data.sources import SourceSpec
from olmoearth_data.stac.retry import RetryPolicy
from olmoearth_data.stac.search import PeriodItems, SearchCache, search_sample

log = logging.getLogger(__name__)


def materialise_monthly(
    *,
    sample: Sample,
    spec: ModalitySpec,
    source: SourceSpec,
    context: MaterialiseContext | None = None,
    client: pystac_client.Client | None = None,
    stac_url: str = "",
    sign: Callable[[str], str] | None = None,
    cache: SearchCache | None = None,
    retry: RetryPolicy | None = None,
) -> ModalityResult:
    """Composite every period of ``sample`` for one monthly modality.

    Returns arrays ``[12, C, H, W]`` per bandset (storage dtype, nodata where empty), presence and
    a :class:`MissingReason` per period, and the ids of the items that contributed. ``context``: the
    worker's :class:`~olmoearth_data.materialise.context.MaterialiseContext` (client, signer, retry, search
    cache, read pool); the periods are searched and composited as its read tasks, side by side. Without
    one, a context is made of ``client``/``stac_url``/``sign``/``cache``/``retry`` for this call.
    ``retry``: how a failed item read is retried (None: not retried) before the item is skipped (a bad
    file) or :class:`~olmoearth_data.outages.SourceUnavailableError` is raised (the network or a service).
    """
    if context is None:
        with legacy_context(client=client, stac_url=stac_url, sign=sign, cache=cache, retry=retry) as ctx:
            return materialise_monthly(sample=sample, spec=spec, source=source, context=ctx)
    periods = sample.periods
    searched = search_sample(
        client=context.client,
        source=source,
        tile=sample.tile,
        periods=periods,
        stac_url=context.stac_url,
        cache=context.cache,
        run=lambda tasks: context.run(spec, tasks),
    )
    n_periods = len(periods)
    arrays = empty_arrays(spec, n_periods=n_periods)
    tasks = [
        functools.partial(
            _period,
            arrays,
            t,
            period_items,
            sample=sample,
            spec=spec,
            source=source,
            sign=context.sign,
            retry=context.retry,
        )
        for t, period_items in enumerate(searched)
    ]
    outcomes = context.run(spec, tasks)  # each writes only its period's slice of ``arrays``
    present = np.array([o[1] == MissingReason.PRESENT for o in outcomes], dtype=bool)
    reason = np.array([int(o[1]) for o in outcomes], dtype=np.uint8)
    return ModalityResult(arrays=arrays, present=present, reason=reason, item_ids=[o[0] for o in outcomes])


def _period(
    arrays: dict[str, np.ndarray],
    t: int,
    period_items: PeriodItems,
    *,
    sample: Sample,
    spec: ModalitySpec,
    source: SourceSpec,
    sign: Callable[[str], str],
    retry: RetryPolicy | None,
) -> tuple[list[str], MissingReason]:
    """Period ``t``: the coverage choice and composite of its items into ``arrays[...][t]``; returns the
    ids of the items used and the period's :class:`MissingReason`."""
    fill = nodata_fill(spec)
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
        used, failed = composite_bandsets(
            arrays,
            t,
            items,
            fallback=fallback,
            sample=sample,
            spec=spec,
            source=source,
            sign=sign,
            retry=retry,
        )
        if not failed:
            break
        skipped |= failed
        again = select_covering([d for d in placed if d["id"] not in skipped], tile=sample.tile)
        same = [d["id"] for d in again] == [i.id for i in items if i.id not in failed]
        if same and not failed & set(used):
            break  # this round's composite already is that of the items without the failed ones
    if any(valid_mask(arrays[bs.name][t], nodata=fill).any() for bs in spec.bandsets):
        return used, MissingReason.PRESENT
    if items and {i.id for i in items} <= skipped:
        return used, MissingReason.READ_FAILED
    if items:
        return used, MissingReason.ALL_NODATA
    return used, MissingReason.NO_ITEMS
