"""The 12 × 30-day half-open periods of a sample (data spec §3.5)."""

from __future__ import annotations

import datetime as dt
import itertools

from olmoearth_data.periods import monthly_periods, span


def test_reference_example() -> None:
    # data spec §3.5: c = 2018-12-12 → first period 2018-06-08 … 2018-07-08.
    periods = monthly_periods(centre=dt.date(2018, 12, 12))
    assert len(periods) == 12
    assert (periods[0].start, periods[0].end) == (dt.date(2018, 6, 8), dt.date(2018, 7, 8))
    c = dt.date(2018, 12, 12)
    assert periods[5].end == c - dt.timedelta(days=7)  # k = 6: c−37 d → c−7 d
    assert periods[6].start == c - dt.timedelta(days=7)  # k = 7: c−7 d → c+23 d
    assert periods[11].end == c + dt.timedelta(days=173)
    assert span(centre=c).start == c - dt.timedelta(days=187)


def test_periods_are_contiguous_half_open_and_30_days() -> None:
    periods = monthly_periods(centre=dt.date(2020, 2, 29))
    for a, b in itertools.pairwise(periods):
        assert a.end == b.start
    assert all((p.end - p.start).days == 30 for p in periods)
    p = periods[3]
    assert p.contains(p.start) and not p.contains(p.end)
    assert p.contains(dt.datetime.combine(p.end, dt.time()) - dt.timedelta(microseconds=1))
    assert not p.contains(dt.datetime.combine(p.end, dt.time(), tzinfo=dt.UTC))


def test_stac_interval_is_closed_equivalent() -> None:
    p = monthly_periods(centre=dt.date(2018, 12, 12))[0]
    assert p.stac_datetime() == "2018-06-08T00:00:00Z/2018-07-07T23:59:59.999999Z"
    assert p.month0 == 5
