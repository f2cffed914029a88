"""Which instant places a STAC item in a monthly period, including items with ``datetime: null``.

The STAC spec lets an item set ``datetime`` to ``null`` when it covers a range, and then requires
``start_datetime`` and ``end_datetime``. A STAC API matches such an item to any search interval that
*overlaps* its range, so a per-period search finds it in every period the range touches (pgstac
also drops ``datetime: null`` from its answers, so the item arrives without a ``datetime``). Accepted
as found, a range crossing a period boundary landed in two periods (2 of a sample's 12 differed from
a build of the same data with a single ``datetime``).

**Decision: the midpoint decides.** An item with a ``datetime`` is placed by it (as before); an item
without one is placed by the midpoint of ``[start_datetime, end_datetime]`` — the half-open period
``[start, end)`` containing the midpoint gets it, no other period does. The midpoint is the range's
nominal time: for a scene whose start and end are seconds apart it is the acquisition time, and it is
symmetric, so a range is never pulled towards one end. A range whose midpoint lies outside the
sample's 12 periods is in none of them. An item with only one of the two bounds is placed by that
bound; an item with no time at all is kept where the search put it (nothing better is known).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pystac

from olmoearth_data.periods import Period


def _parse(value: object) -> dt.datetime | None:
    if not value:
        return None
    when = pystac.utils.str_to_datetime(str(value))
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


def item_instant(item: Mapping[str, Any]) -> dt.datetime | None:
    """The instant that places ``item`` (a STAC item dict): its ``datetime``, else the midpoint of
    ``start_datetime``/``end_datetime``, else whichever bound it has, else None."""
    props = item.get("properties") or {}
    when = _parse(props.get("datetime"))
    if when is not None:
        return when
    start, end = _parse(props.get("start_datetime")), _parse(props.get("end_datetime"))
    if start is not None and end is not None:
        return start + (end - start) / 2
    return start or end


def in_period(item: Mapping[str, Any], *, period: Period) -> bool:
    """Whether ``item`` belongs to ``period`` by :func:`item_instant` (True when it has no time)."""
    when = item_instant(item)
    return True if when is None else period.contains(when)


def place_items(items: Sequence[Mapping[str, Any]], *, period: Period) -> list[Mapping[str, Any]]:
    """The items of one period's search that belong to it, in their order (see the module docstring)."""
    return [d for d in items if in_period(d, period=period)]
