"""Stratified tile sampling: per sampling category up to N tiles, drawn with a seed, then their union.

Reference (data spec §3.3) deviations, deliberate:

* The reference caps each category at 10,000 *0.001° cells* (~111 m) and dedups tiles later; we map
  every feature point to its 2560 m tile first and cap *tiles* per category, so a category's quota is
  never spent on several cells of one tile.
* The reference draw (`random.sample`) is unseeded; ours uses ``numpy.random.default_rng(seed)`` and
  visits categories in the fixed §3.2 order over tile ids sorted as strings, so a seed fixes the table.
* Extension (off by default): :func:`centre_date_sets` gives each drawn tile ``k`` centre dates with
  disjoint 12-period windows, i.e. ``k`` samples of one place in different years. The reference has
  one date per tile (``k = 1``, which returns exactly :func:`~olmoearth_data.osm.time.centre_dates`);
  ``k > 1`` lets a small OSM extract (a test fixture, a city) yield a corpus of useful size, and adds
  temporal diversity per place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from olmoearth_data.grid import Tile, tiles_for_lonlats
from olmoearth_data.modalities import NUM_PERIODS
from olmoearth_data.osm.categories import SAMPLING_CATEGORY_NAMES
from olmoearth_data.osm.time import COARSE_FACTOR, TIME_END, TIME_START, NaipDates, centre_dates
from olmoearth_data.periods import PERIOD_DAYS

DEFAULT_PER_CATEGORY = 10_000
#: Days between two centre dates of one tile (``centre_date_sets``): the span of the 12 periods, so
#: the windows of a tile's samples never overlap.
MIN_GAP_DAYS = NUM_PERIODS * PERIOD_DAYS
#: Largest ``k`` that always fits: k − 1 chosen dates exclude at most (k − 1)(2·gap − 1) days.
MAX_DATES_PER_TILE = -(-(TIME_END - TIME_START).days // (2 * MIN_GAP_DAYS - 1))


@dataclass(frozen=True)
class CategoryDraw:
    """Per-category summary: features (points) found, distinct tiles found, tiles drawn."""

    category: str
    features_found: int
    tiles_found: int
    tiles_drawn: int


def point_tiles(*, lon: np.ndarray, lat: np.ndarray) -> list[Tile]:
    """Tile of each point (float64 ``[N]`` lon/lat in degrees); duplicate points are projected once."""
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    if len(lon) == 0:
        return []
    uniq, inverse = np.unique(np.column_stack([lon, lat]), axis=0, return_inverse=True)
    tiles = tiles_for_lonlats(lon=uniq[:, 0], lat=uniq[:, 1])
    return [tiles[i] for i in inverse.ravel()]


def draw_tiles(
    *, category: Sequence[str] | np.ndarray, lon: np.ndarray, lat: np.ndarray,
    per_category: int = DEFAULT_PER_CATEGORY, seed: int = 0,
    categories: Sequence[str] = SAMPLING_CATEGORY_NAMES,
) -> tuple[dict[Tile, tuple[str, ...]], list[CategoryDraw]]:  # fmt: skip
    """Draw up to ``per_category`` distinct tiles per category and return their union.

    Inputs are parallel ``[N]`` arrays (one row per feature point and category, as written by
    :func:`olmoearth_data.osm.extract.extract_osm`). Returns ``{tile: categories that chose it}`` (tiles
    sorted by id, categories in ``categories`` order) and one :class:`CategoryDraw` per category.
    """
    if per_category < 1:
        raise ValueError(f"per_category must be ≥ 1, got {per_category}")
    category = np.asarray(category, dtype=object)
    tiles = point_tiles(lon=lon, lat=lat)
    ids = np.array([t.id for t in tiles], dtype=object)
    rng = np.random.default_rng(seed)
    chosen: dict[str, list[str]] = {}
    by_id: dict[str, Tile] = {t.id: t for t in tiles}
    summary = []
    for name in categories:
        sel = category == name
        found = np.unique(ids[sel].astype(str)) if sel.any() else np.array([], dtype=str)
        if len(found) > per_category:
            drawn = found[np.sort(rng.choice(len(found), size=per_category, replace=False))]
        else:
            drawn = found
        for tid in drawn:
            chosen.setdefault(str(tid), []).append(name)
        summary.append(CategoryDraw(name, int(sel.sum()), len(found), len(drawn)))
    out = {by_id[tid]: tuple(cats) for tid, cats in sorted(chosen.items())}
    return out, summary


def centre_date_sets(
    *, tiles: Sequence[Tile], k: int = 1, seed: int = 0, naip: NaipDates | None = None
) -> dict[Tile, tuple[dt.date, ...]]:
    """``k`` centre dates (UTC days) per tile whose 12-period windows are disjoint; ``k = 1`` is
    :func:`centre_dates` exactly.

    The first date of every tile is :func:`centre_dates`' (NAIP rule included when ``naip`` is given),
    so the ``k``-table holds the ``k = 1`` table's rows. Dates 2..k are drawn uniformly among the days
    of [``TIME_START``, ``TIME_END``) at least :data:`MIN_GAP_DAYS` (one 360-day window) from every
    date already chosen — so no two samples of a place share a period — from their own stream
    (``default_rng([seed, 1])``, which never shifts the first date). One set per 40.96 km coarse cell:
    tiles of a cell share all ``k`` dates, as they share the reference rule's one date. Cells are
    visited in sorted order, so the result does not depend on the order of ``tiles``.
    ``k ≤`` :data:`MAX_DATES_PER_TILE` always fits in the 8-year range.
    """
    if not 1 <= k <= MAX_DATES_PER_TILE:
        raise ValueError(
            f"dates per tile must be between 1 and {MAX_DATES_PER_TILE} (disjoint 360-day windows in "
            f"[{TIME_START}, {TIME_END})), got {k}"
        )
    first = centre_dates(tiles=tiles, seed=seed, naip=naip)
    if k == 1:
        return {t: (d,) for t, d in first.items()}
    rng = np.random.default_rng([seed, 1])
    days = np.arange((TIME_END - TIME_START).days)
    cell_dates: dict[tuple[int, int, int], list[dt.date]] = {}
    for tile in sorted(first):
        cell = tile.coarse_cell(factor=COARSE_FACTOR)
        if cell in cell_dates:
            continue
        taken = [(first[tile] - TIME_START).days]
        while len(taken) < k:
            free = days[(np.abs(days[:, None] - np.asarray(taken)[None, :]) >= MIN_GAP_DAYS).all(axis=1)]
            taken.append(int(free[rng.integers(len(free))]))
        cell_dates[cell] = [TIME_START + dt.timedelta(days=d) for d in taken]
    return {t: tuple(cell_dates[t.coarse_cell(factor=COARSE_FACTOR)]) for t in first}
