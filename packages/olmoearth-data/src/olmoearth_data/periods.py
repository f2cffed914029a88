"""The 12 monthly periods of a sample, from its centre date (``docs/data.md`` §3.5).

With window start ``s = c − 7 d``, period k (k = 1…12) is the half-open day range
``[s + (k−7)·30 d, s + (k−6)·30 d)``; together they span ``[c − 187 d, c + 173 d)``. All times are UTC
days. Example: centre 2018-12-12 → first period 2018-06-08 … 2018-07-08 (end excluded).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from olmoearth_data.modalities import NUM_PERIODS

PERIOD_DAYS = 30
#: The reference's rslearn window is centre ± 7 days; periods are offsets of its start.
WINDOW_HALF_DAYS = 7


@dataclass(frozen=True, order=True)
class Period:
    """A half-open UTC day range ``[start, end)``."""

    start: dt.date
    end: dt.date

    @property
    def month0(self) -> int:
        """0-based calendar month of the period start (what the month encoding reads)."""
        return self.start.month - 1

    def stac_datetime(self) -> str:
        """A closed STAC datetime interval equal to the half-open period.

        STAC intervals are closed, so the end is the last microsecond before ``end``: an item stamped
        exactly at midnight of ``end`` belongs to the next period, never to both.
        """
        start = dt.datetime.combine(self.start, dt.time(0), tzinfo=dt.UTC)
        last = dt.datetime.combine(self.end, dt.time(0), tzinfo=dt.UTC) - dt.timedelta(microseconds=1)
        return f"{start.isoformat().replace('+00:00', 'Z')}/{last.isoformat().replace('+00:00', 'Z')}"

    def contains(self, when: dt.datetime | dt.date) -> bool:
        """Whether a time (naive = UTC) falls in ``[start, end)``."""
        if isinstance(when, dt.datetime):
            if when.tzinfo is not None:
                when = when.astimezone(dt.UTC).replace(tzinfo=None)
            return (
                dt.datetime.combine(self.start, dt.time(0))
                <= when
                < dt.datetime.combine(self.end, dt.time(0))
            )
        return self.start <= when < self.end


def monthly_periods(*, centre: dt.date) -> tuple[Period, ...]:
    """The 12 periods of a sample centred on ``centre``, oldest first."""
    if isinstance(centre, dt.datetime):
        centre = centre.date()
    window_start = centre - dt.timedelta(days=WINDOW_HALF_DAYS)
    return tuple(
        Period(
            window_start + dt.timedelta(days=(k - 7) * PERIOD_DAYS),
            window_start + dt.timedelta(days=(k - 6) * PERIOD_DAYS),
        )
        for k in range(1, NUM_PERIODS + 1)
    )


def span(*, centre: dt.date) -> Period:
    """The whole 360-day range ``[c − 187 d, c + 173 d)`` covered by the 12 periods."""
    ps = monthly_periods(centre=centre)
    return Period(ps[0].start, ps[-1].end)
