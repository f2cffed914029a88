"""Stratified tile sampling: per sampling category up to N tiles, drawn with a seed, then their union.

Reference (data spec §3.3) deviations, deliberate:

* The reference caps each category at 10,000 *0.001° cells* (~111 m) and dedups tiles later; we map
  every feature point to its 2560 m tile first and cap *tiles* per category, so a category's quota is
  never spent on several cells of one tile.
* The reference draw (`random.sample`) is unseeded; ours uses ``numpy.random.default_rng(seed)`` and
  visits categories in the fixed §3.2 order over tile ids sorted as strings, so a seed fixes the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from olmoearth_data.grid import Tile, tiles_for_lonlats
from olmoearth_data.osm.categories import SAMPLING_CATEGORY_NAMES

DEFAULT_PER_CATEGORY = 10_000


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
