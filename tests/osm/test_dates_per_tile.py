"""The sampler's ``dates_per_tile`` extension: k samples per tile in disjoint years; k = 1 unchanged."""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from olmoearth_data.grid import Tile, tile_for_lonlat
from olmoearth_data.osm.pipeline import run_sampling
from olmoearth_data.osm.sampling import MAX_DATES_PER_TILE, MIN_GAP_DAYS, centre_date_sets
from olmoearth_data.osm.time import TIME_END, TIME_START, centre_dates
from olmoearth_data.periods import span

from .conftest import KOTKA  # the Kotka fixture: 4 tiles


def _tiles(n: int = 300) -> list[Tile]:
    """Tiles over ~1° × 1°: a few dozen 40.96 km coarse cells, several tiles in most."""
    rng = np.random.default_rng(7)
    return sorted(
        {tile_for_lonlat(lon=x, lat=y) for x, y in zip(rng.uniform(8, 9, n), rng.uniform(47, 48, n))}
    )


def test_one_date_per_tile_is_the_reference_rule() -> None:
    tiles = _tiles()
    for seed in (0, 3):
        assert centre_date_sets(tiles=tiles, k=1, seed=seed) == {
            t: (d,) for t, d in centre_dates(tiles=tiles, seed=seed).items()
        }


@pytest.mark.parametrize("k", [2, 4, MAX_DATES_PER_TILE])
def test_k_dates_in_range_disjoint_windows_shared_per_cell_and_seeded(k: int) -> None:
    tiles = _tiles()
    sets = centre_date_sets(tiles=tiles, k=k, seed=3)
    first = centre_dates(tiles=tiles, seed=3)
    assert sets == centre_date_sets(tiles=list(reversed(tiles)), k=k, seed=3)
    assert sets != centre_date_sets(tiles=tiles, k=k, seed=4)
    by_cell: dict[tuple[int, int, int], set[tuple[dt.date, ...]]] = {}
    for tile, dates in sets.items():
        assert len(dates) == k and dates[0] == first[tile]  # the k = 1 table's row comes first
        assert all(TIME_START <= d < TIME_END for d in dates)
        windows = sorted(span(centre=d) for d in dates)
        assert all(a.end <= b.start for a, b in itertools.pairwise(windows)), dates
        assert min(abs((a - b).days) for a, b in itertools.combinations(dates, 2)) >= MIN_GAP_DAYS
        by_cell.setdefault(tile.coarse_cell(factor=16), set()).add(dates)
    assert all(len(v) == 1 for v in by_cell.values())  # tiles of a coarse cell share all k dates
    assert len(by_cell) > 5


def test_the_largest_k_always_fits() -> None:
    """k = MAX_DATES_PER_TILE for many cells and seeds: the draw never runs out of free days."""
    for seed in range(20):
        sets = centre_date_sets(tiles=_tiles(), k=MAX_DATES_PER_TILE, seed=seed)
        assert all(len(set(d)) == MAX_DATES_PER_TILE for d in sets.values())


@pytest.mark.parametrize("k", [0, MAX_DATES_PER_TILE + 1])
def test_out_of_range_k_is_refused(k: int, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"between 1 and {MAX_DATES_PER_TILE}"):
        centre_date_sets(tiles=_tiles(10), k=k)
    with pytest.raises(ValueError, match="dates per tile must be between 1"):
        run_sampling(out=tmp_path / "s.parquet", osm=KOTKA, dates_per_tile=k)


def test_table_holds_k_rows_per_tile_and_the_k1_rows(tmp_path: Path) -> None:
    one = run_sampling(out=tmp_path / "one.parquet", osm=KOTKA, seed=0)
    three = run_sampling(out=tmp_path / "three.parquet", osm=KOTKA, seed=0, dates_per_tile=3)
    dry = run_sampling(out=tmp_path / "dry.parquet", osm=KOTKA, seed=0, dates_per_tile=3, dry_run=True)
    a, b = pd.read_parquet(one.table), pd.read_parquet(three.table)
    assert three.n_samples == dry.n_samples == len(b) == 3 * len(a) == 3 * one.n_samples
    assert list(b["tile_id"]) == [t for t in a["tile_id"] for _ in range(3)]  # tile by tile
    rows = set(zip(b["tile_id"], b["centre_date"]))
    assert set(zip(a["tile_id"], a["centre_date"])) <= rows and len(rows) == len(b)
    # the per-category draw is the same whatever k is
    assert pd.read_csv(one.summary).equals(pd.read_csv(three.summary))
    for tid, group in b.groupby("tile_id"):
        assert list(group["categories"].map(list)) == [list(a[a["tile_id"] == tid]["categories"].iloc[0])] * 3


def test_cli_option(tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    cmd = [
        sys.executable,
        "-m",
        "olmoearth_data.cli",
        "sample",
        "--osm",
        str(KOTKA),
        "--out",
        str(out),
        "--quiet",
    ]
    ok = subprocess.run([*cmd, "--dates-per-tile", "2"], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert f"wrote {len(pd.read_parquet(out))} samples" in ok.stdout
    bad = subprocess.run([*cmd, "--dates-per-tile", "9"], capture_output=True, text=True, timeout=300)
    # one line naming the option and its range, exit 2
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert "dates-per-tile must be between 1 and 5" in bad.stderr
