"""Per-category tile draw, centre dates and the sample table."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from olmoearth_data.grid import Tile, tile_for_lonlat
from olmoearth_data.osm.pipeline import run_sampling
from olmoearth_data.osm.sampling import draw_tiles
from olmoearth_data.osm.time import TIME_END, TIME_START, centre_dates
from olmoearth_data.samples import read_sample_table

from .conftest import KOTKA, OAKLAND


def _synthetic(n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(42)
    lon = rng.uniform(8.0, 9.0, n)
    lat = rng.uniform(47.0, 47.5, n)
    cats = rng.choice(["farmland", "railway", "rugby"], n)
    return cats, lon, lat


def test_draw_is_seeded_capped_and_deduplicated() -> None:
    cats, lon, lat = _synthetic()
    a, sa = draw_tiles(category=cats, lon=lon, lat=lat, per_category=20, seed=1)
    b, _ = draw_tiles(category=cats, lon=lon, lat=lat, per_category=20, seed=1)
    c, _ = draw_tiles(category=cats, lon=lon, lat=lat, per_category=20, seed=2)
    assert a == b
    assert set(a) != set(c)
    per_cat = {s.category: s for s in sa if s.tiles_found}
    assert set(per_cat) == {"farmland", "railway", "rugby"}
    for name, s in per_cat.items():
        assert s.tiles_drawn == 20 < s.tiles_found
        assert sum(name in v for v in a.values()) == 20
    assert len(set(t.id for t in a)) == len(a)
    # every chosen tile holds a point of each category that chose it
    for tile, chosen_by in a.items():
        for name in chosen_by:
            sel = cats == name
            assert any(tile.contains_lonlat(lon=x, lat=y) for x, y in zip(lon[sel], lat[sel]))


def test_centre_dates_in_range_shared_per_coarse_cell_and_seeded() -> None:
    tiles = sorted({tile_for_lonlat(lon=x, lat=y) for x, y in zip(*_synthetic(300)[1:])})
    d1 = centre_dates(tiles=tiles, seed=3)
    assert d1 == centre_dates(tiles=list(reversed(tiles)), seed=3)
    assert d1 != centre_dates(tiles=tiles, seed=4)
    cells: dict[tuple[int, int, int], set[dt.date]] = {}
    for t, d in d1.items():
        assert TIME_START <= d < TIME_END
        cells.setdefault(t.coarse_cell(factor=16), set()).add(d)
    assert all(len(v) == 1 for v in cells.values())
    assert len(cells) > 1 and len(set(d1.values())) > 1


def test_run_sampling_on_fixture_table(tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    res = run_sampling(out=out, osm=KOTKA, per_category=1, seed=0)
    again = run_sampling(out=tmp_path / "t.parquet", osm=KOTKA, per_category=1, seed=0)
    assert pd.read_parquet(out).equals(pd.read_parquet(again.table))
    df = pd.read_parquet(out)
    assert list(df.columns) == ["tile_id", "epsg", "col", "row", "centre_lon", "centre_lat", "centre_date",
                                "categories", "period_start", "period_end", "geometry"]  # fmt: skip
    assert df["tile_id"].is_unique and len(df) == res.n_samples
    summary = pd.read_csv(res.summary)
    assert (summary["tiles_drawn"] <= 1).all() and summary["tiles_drawn"].sum() >= len(df)
    points = pq.read_table(out.with_suffix(".work") / "points.parquet").to_pandas()
    for row in df.itertuples():
        tile = Tile.from_id(row.tile_id)
        assert len(row.period_start) == 12
        for cat in row.categories:
            sel = points[points["category"] == cat]
            assert any(tile.contains_lonlat(lon=x, lat=y) for x, y in zip(sel["lon"], sel["lat"]))
    samples = read_sample_table(out)
    assert [s.tile.id for s in samples] == list(df["tile_id"])
    assert samples[0].periods[0].start == row_first_period(df)


def row_first_period(df: pd.DataFrame) -> dt.date:
    return df["period_start"].iloc[0][0]


def test_lonlats_input(tmp_path: Path) -> None:
    src = tmp_path / "lon_lats.json"
    src.write_text("[[-122.3, 37.807], [-122.3001, 37.8071], [10.07, 48.136]]")
    res = run_sampling(out=tmp_path / "s.parquet", lonlats=src, seed=0)
    assert res.n_samples == 2


def test_needs_exactly_one_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        run_sampling(out=tmp_path / "s.parquet", osm=OAKLAND, lonlats=tmp_path / "x.json")
