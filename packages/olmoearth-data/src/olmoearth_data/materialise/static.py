"""Static STAC maps (WorldCover, elevation, CDL): one mosaic of the items covering a tile.

SINGLE compositing: every item intersecting the tile (after the source's filters) is merged per pixel,
first valid, in the source's sort order then id. The monthly path's greedy coverage selection is not
used here: its "stop below 1 % uncovered" rule would leave a sliver of nodata where a second product
tile (CDL's 15 km tiles, WorldCover's 3° tiles, NASADEM's 1° cells) covers the tile's edge, and these
tiles abut rather than overlap, so the order only matters on shared edges.

Static items carry no single ``datetime`` (WorldCover and CDL have start/end datetimes, and pgstac
drops ``datetime: null`` from its answers), so the search spans :data:`STATIC_PERIOD` instead of a
month; CDL then keeps one year (:func:`nearest_year`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pystac
import pystac_client

from olmoearth_data.composite.first_valid import valid_mask
from olmoearth_data.cube.layout import empty_arrays, nodata_fill
from olmoearth_data.materialise.bandsets import composite_bandsets
from olmoearth_data.materialise.context import MaterialiseContext, legacy_context
from olmoearth_data.missing import MissingReason
from olmoearth_data.modalities import ModalitySpec
from olmoearth_data.periods import Period
from olmoearth_data.results import ModalityResult
from olmoearth_data.samples import Sample
from olmoearth_data.sources import SourceSpec
from olmoearth_data.stac.retry import RetryPolicy
from olmoearth_data.stac.search import SearchCache, search_sample

log = logging.getLogger(__name__)

#: The time range a static search spans: wide enough for every static product's dates.
STATIC_PERIOD = Period(dt.date(1900, 1, 1), dt.date(2100, 1, 1))


def item_year(item: dict[str, Any]) -> int:
    """Calendar year of an annual product item, from ``start_datetime`` (else ``datetime``)."""
    props = item.get("properties", {})
    when = props.get("start_datetime") or props.get("datetime")
    if not when:
        raise ValueError(f"item {item.get('id')} has neither start_datetime nor datetime")
    return int(str(when)[:4])


def nearest_year(items: Sequence[dict[str, Any]], *, centre: dt.date) -> int:
    """The year among ``items`` nearest ``centre``: 0 days away when the centre lies in it, else the days
    to its nearer end; a tie goes to the newer year (the reference walked years newest first)."""

    def distance(year: int) -> int:
        start, end = dt.date(year, 1, 1), dt.date(year, 12, 31)
        return max((start - centre).days, (centre - end).days, 0)

    years = sorted({item_year(i) for i in items})
    return min(years, key=lambda y: (distance(y), -y))


def materialise_static(
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
    """Mosaic one static modality onto ``sample``'s tile grid.

    Returns arrays ``[1, C, H, W]`` per bandset in the modality's storage dtype (the tile's UTM CRS,
    north-up, H = W = 2560 m / pixel size), nodata where no item has data; ``present``/``reason`` of
    shape ``[1]``; the contributing item ids; for CDL ``extra["cdl_year"]``. ``context``: the worker's
    :class:`~olmoearth_data.materialise.context.MaterialiseContext` (without one, a context of
    ``client``/``stac_url``/``sign``/``cache``/``retry``); ``retry``: how a failed item read is retried
    before the item is skipped (None: not retried).
    """
    if context is None:
        with legacy_context(client=client, stac_url=stac_url, sign=sign, cache=cache, retry=retry) as ctx:
            return materialise_static(sample=sample, spec=spec, source=source, context=ctx)
    searched = search_sample(
        client=context.client,
        source=source,
        tile=sample.tile,
        periods=[STATIC_PERIOD],
        stac_url=context.stac_url,
        cache=context.cache,
        run=lambda tasks: context.run(spec, tasks),
    )
    found = list(searched[0].items)
    fill = nodata_fill(spec)
    arrays = empty_arrays(spec, n_periods=1)
    result = ModalityResult(
        arrays=arrays,
        present=np.zeros(1, dtype=bool),
        reason=np.full(1, int(MissingReason.NO_ITEMS), dtype=np.uint8),
        item_ids=[[]],
    )
    if not found:
        if source.regional:
            result.reason[0] = MissingReason.OUTSIDE_COVERAGE
        return result
    if source.nearest_year:  # CDL
        year = nearest_year(found, centre=sample.centre)
        found = [i for i in found if item_year(i) == year]
        result.extra["cdl_year"] = year
    items = [pystac.Item.from_dict(d, preserve_dict=True) for d in found]
    ahead = context.read_ahead(spec)  # item reads as read tasks; without, the mosaic is one task

    def mosaic() -> tuple[list[str], set[str]]:
        return composite_bandsets(
            arrays, 0, items, sample=sample, spec=spec, source=source, sign=context.sign,
            retry=context.retry, read_ahead=ahead,
        )  # fmt: skip

    used, failed = mosaic() if ahead is not None else context.run(spec, [mosaic])[0]
    result.item_ids[0].extend(used)
    if any(valid_mask(arrays[bs.name][0], nodata=fill).any() for bs in spec.bandsets):
        result.present[0] = True
        result.reason[0] = MissingReason.PRESENT
    elif items and failed >= {i.id for i in items}:
        result.reason[0] = MissingReason.READ_FAILED
    else:
        result.reason[0] = MissingReason.ALL_NODATA
    return result
