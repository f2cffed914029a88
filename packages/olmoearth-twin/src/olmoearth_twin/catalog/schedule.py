"""When a group of granules was acquired: Sentinel-2-like datatakes per 30-day period.

Each group has a *primary* relative orbit that covers it fully and a neighbouring *secondary* orbit
whose swath edge crosses the sample tiles (partial coverage, a straight no-data edge). Both revisit
every 5 days, S2A and S2B alternating, the secondary 2 days after the primary. Per period the plan
draws 0 (about 15 % of periods, at least one per group), 1, 2, 3 or 4 datatakes among those slots;
the first of a period is always on the primary orbit and has a low cloud target (0–12 %), the others
8–95 %. Times follow a 10:30 local mean solar time descending pass.

Processing baselines follow the sensing date (a simplified ESA timeline; PC mixes them the same way):
< 2021-06-30 "02.12", < 2022-01-25 "03.01", < 2023-12-13 "04.00", < 2024-07-23 "05.10", else "05.11".
Baselines >= 04.00 carry BOA_ADD_OFFSET = -1000 (DN = reflectance + 1000).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from olmoearth_data.periods import Period

_BASELINES = (
    (dt.date(2021, 6, 30), "02.12"),
    (dt.date(2022, 1, 25), "03.01"),
    (dt.date(2023, 12, 13), "04.00"),
    (dt.date(2024, 7, 23), "05.10"),
)
_LATEST_BASELINE = "05.11"
_LAUNCH = {"Sentinel-2A": dt.date(2015, 6, 23), "Sentinel-2B": dt.date(2017, 3, 7)}
_ORBITS_PER_DAY = 14.3  # 143 orbits per 10-day cycle
_SCENES_PER_PERIOD = (1, 2, 3, 4)
_SCENE_WEIGHTS = (0.2, 0.35, 0.3, 0.15)
_EMPTY_SHARE = 0.15


def processing_baseline(*, sensing: dt.date) -> str:
    """Processing baseline string of a product sensed on ``sensing`` (see module docstring)."""
    for until, baseline in _BASELINES:
        if sensing < until:
            return baseline
    return _LATEST_BASELINE


def has_boa_offset(*, baseline: str) -> bool:
    """Whether DNs carry the +1000 BOA_ADD_OFFSET (baseline 04.00 and later)."""
    return tuple(int(p) for p in baseline.split(".")) >= (4, 0)


@dataclass(frozen=True)
class Acquisition:
    """One datatake over a granule group.

    Attributes:
        platform: ``Sentinel-2A`` / ``Sentinel-2B``.
        sensing: datatake sensing time (UTC, always ``.024`` s like PC's items).
        datastrip_start: datastrip sensing start (2 s earlier; used in folder names and ids).
        generation: product generation time (UTC, whole seconds).
        relative_orbit, absolute_orbit: orbit numbers.
        partial: secondary orbit: a swath edge crosses the sample tiles.
        cloud_target: wanted cloud cover (percent); the real value is measured from SCL.
        baseline: processing baseline, e.g. ``04.00``.
        seed: per-acquisition seed for its pixels.
    """

    platform: str
    sensing: dt.datetime
    datastrip_start: dt.datetime
    generation: dt.datetime
    relative_orbit: int
    absolute_orbit: int
    partial: bool
    cloud_target: float
    baseline: str
    seed: int

    @property
    def boa_offset(self) -> bool:
        return has_boa_offset(baseline=self.baseline)


def _absolute_orbit(platform: str, when: dt.datetime) -> int:
    # 14.3 orbits a day since launch: gives A041856 for S2B on 2025-03-12, as the real PC item.
    return int((when.date() - _LAUNCH[platform]).days * _ORBITS_PER_DAY)


def plan_acquisitions(*, rng: np.random.Generator, periods: list[Period], lon: float) -> list[Acquisition]:
    """Datatakes over one granule group for the given (possibly overlapping) periods, time-sorted.

    Args:
        rng: the group's generator (consumed deterministically).
        periods: all sample periods of the group; duplicates are ignored.
        lon: longitude (degrees) of the group, for the local-solar-time pass.
    """
    distinct = sorted(set(periods))
    n_empty = max(1, round(_EMPTY_SHARE * len(distinct)))
    empty = set(rng.choice(len(distinct), size=min(n_empty, len(distinct)), replace=False).tolist())
    primary_orbit = int(rng.integers(1, 144))
    secondary_orbit = (primary_orbit - 1 + 100) % 143 + 1
    phase = int(rng.integers(0, 10))
    # 10:30 local mean solar time, in minutes after UTC midnight (may wrap to the previous/next day).
    pass_minutes = 630.0 - 4.0 * lon
    chosen: dict[tuple[dt.date, bool], Acquisition] = {}
    for index, period in enumerate(distinct):
        if index in empty:
            continue
        # Slots avoid a period's first and last day so the UTC shift cannot move a scene across.
        days = [period.start + dt.timedelta(days=d) for d in range(1, (period.end - period.start).days - 1)]
        slots = [
            (day, partial)
            for day in days
            for partial in (False, True)
            if (day.toordinal() - phase - (2 if partial else 0)) % 5 == 0
        ]
        primary = [s for s in slots if not s[1]]
        n = int(rng.choice(_SCENES_PER_PERIOD, p=_SCENE_WEIGHTS))
        picks = [primary[int(rng.integers(len(primary)))]] if primary else []
        rest = [s for s in slots if s not in picks]
        weights = np.array([1.0 if partial else 2.0 for _, partial in rest])
        if rest and n > 1:
            extra = rng.choice(
                len(rest), size=min(n - 1, len(rest)), replace=False, p=weights / weights.sum()
            )
            picks += [rest[int(i)] for i in extra]
        for rank, (day, partial) in enumerate(picks):
            cloud = float(rng.uniform(0.0, 12.0) if rank == 0 else rng.uniform(8.0, 95.0))
            cycle = (day.toordinal() - phase - (2 if partial else 0)) // 5
            platform = "Sentinel-2A" if cycle % 2 == 0 else "Sentinel-2B"
            midnight = dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC)
            sensing = midnight + dt.timedelta(minutes=pass_minutes, seconds=int(rng.integers(0, 60)))
            sensing = sensing.replace(second=sensing.second, microsecond=24000)
            generation = (sensing + dt.timedelta(seconds=int(rng.integers(2 * 3600, 4 * 3600)))).replace(
                microsecond=0
            )
            chosen.setdefault(
                (day, partial),
                Acquisition(
                    platform=platform,
                    sensing=sensing,
                    datastrip_start=(sensing - dt.timedelta(seconds=2)).replace(microsecond=0),
                    generation=generation,
                    relative_orbit=secondary_orbit if partial else primary_orbit,
                    absolute_orbit=_absolute_orbit(platform, sensing),
                    partial=partial,
                    cloud_target=cloud,
                    baseline=processing_baseline(sensing=sensing.date()),
                    seed=int(rng.integers(0, 2**31 - 1)),
                ),
            )
    return sorted(chosen.values(), key=lambda a: (a.sensing, a.partial))
