"""Centre date per tile (data spec §3.4): one date per 40.96 km coarse cell, seeded.

Default: a uniform random day in [2016-06-01, 2024-06-01) per coarse cell (``Tile.coarse_cell(factor=16)``),
shared by every tile of the cell. The reference draws an instant and truncates it to midnight UTC,
i.e. a uniform day; it is unseeded, we use ``numpy.random.default_rng(seed)``.

Optional NAIP rule (off by default, :class:`NaipDates`): tiles are visited in a seeded shuffled order
and the first tile of a coarse cell decides — if a STAC ``naip`` item whose footprint CONTAINS the
tile exists with a date in range, with probability 1 − 0.25 one of those dates (uniform over items) is
used, else (no NAIP, or the 0.25 draw) the uniform day. Status: implemented, untested here (the
Planetary Computer twin has no ``naip`` collection yet).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import shapely.geometry

from olmoearth_data.grid import Tile

TIME_START = dt.date(2016, 6, 1)
TIME_END = dt.date(2024, 6, 1)
FORCE_UNIFORM_PROB = 0.25
COARSE_FACTOR = 16


class NaipDates:
    """NAIP acquisition dates of items containing a tile, from a STAC API (pystac-client)."""

    def __init__(self, *, stac_url: str, collection: str = "naip") -> None:
        from pystac_client import Client

        self._client = Client.open(stac_url)
        self._collection = collection

    def __call__(self, *, tile: Tile, start: dt.date, end: dt.date) -> list[dt.date]:
        """Dates (UTC days in [start, end)) of items whose footprint contains ``tile``."""
        poly = tile.polygon_lonlat()
        search = self._client.search(
            collections=[self._collection], intersects=shapely.geometry.mapping(poly),
            datetime=f"{start.isoformat()}T00:00:00Z/{(end - dt.timedelta(days=1)).isoformat()}T23:59:59Z",
        )  # fmt: skip
        dates = []
        for item in search.items():
            if item.datetime and shapely.geometry.shape(item.geometry).contains(poly):
                d = item.datetime.astimezone(dt.UTC).date()
                if start <= d < end:
                    dates.append(d)
        return sorted(dates)


def centre_dates(
    *, tiles: Sequence[Tile], seed: int = 0, start: dt.date = TIME_START, end: dt.date = TIME_END,
    naip: NaipDates | None = None, force_uniform_prob: float = FORCE_UNIFORM_PROB,
) -> dict[Tile, dt.date]:  # fmt: skip
    """Centre date for each tile; tiles of one coarse cell share a date. Seeded and order-independent."""
    rng = np.random.default_rng(seed)
    uniq = sorted(set(tiles))
    order = rng.permutation(len(uniq))
    n_days = (end - start).days
    cell_date: dict[tuple[int, int, int], dt.date] = {}
    for i in order:
        tile = uniq[i]
        cell = tile.coarse_cell(factor=COARSE_FACTOR)
        if cell in cell_date:
            continue
        uniform = start + dt.timedelta(days=int(rng.integers(0, n_days)))
        if naip is not None:
            dates = naip(tile=tile, start=start, end=end)
            if dates and rng.random() >= force_uniform_prob:
                uniform = dates[int(rng.integers(0, len(dates)))]
        cell_date[cell] = uniform
    return {t: cell_date[t.coarse_cell(factor=COARSE_FACTOR)] for t in uniq}
