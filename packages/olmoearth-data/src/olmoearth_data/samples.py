"""Samples: a tile plus a centre date (and the OSM categories that chose it), and the sample table.

The table is what the sampler writes and the build reads. Any table with ``tile_id`` and
``centre_date`` columns works (Parquet/GeoParquet or CSV), so a hand-made list of tiles is enough to
build a corpus.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from olmoearth_data.grid import Tile
from olmoearth_data.periods import Period, monthly_periods


@dataclass(frozen=True, order=True)
class Sample:
    """One corpus row: a 2560 m tile observed over the 12 periods around ``centre``."""

    tile: Tile
    centre: dt.date
    categories: tuple[str, ...] = ()

    @property
    def periods(self) -> tuple[Period, ...]:
        return monthly_periods(centre=self.centre)


def read_sample_table(path: Path | str) -> list[Sample]:
    """Read a sample table (``.parquet`` or ``.csv``) with columns ``tile_id`` and ``centre_date``.

    Raises a ValueError that names the missing column or the bad row.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"sample table {path} does not exist; create one with `olmoearth-data sample`"
        )
    if path.suffix == ".csv":
        df = pd.read_csv(path)
    else:
        try:
            df = pd.read_parquet(path)
        except Exception as exc:
            raise ValueError(f"sample table {path} is not a readable Parquet file: {exc}") from exc
    missing = {"tile_id", "centre_date"} - set(df.columns)
    if missing:
        raise ValueError(f"sample table {path} lacks column(s) {sorted(missing)}; it has {list(df.columns)}")
    samples = []
    for i, row in enumerate(df.itertuples(index=False)):
        try:
            tile = Tile.from_id(str(row.tile_id))
            centre = pd.Timestamp(row.centre_date).date()
        except (ValueError, TypeError) as exc:
            raise ValueError(f"sample table {path}, row {i}: {exc}") from exc
        cats = getattr(row, "categories", None)
        categories = tuple(cats) if cats is not None and not isinstance(cats, str) else ()
        samples.append(Sample(tile, centre, categories))
    return samples


def write_sample_table(path: Path | str, *, samples: Sequence[Sample]) -> None:
    """Write the sample table as GeoParquet (geometry = tile outline, WKB, EPSG:4326 lon/lat).

    Columns: ``tile_id`` (str), ``epsg``/``col``/``row`` (int64), ``centre_lon``/``centre_lat``
    (float64 degrees, tile centre), ``centre_date`` (timestamp, UTC midnight), ``categories``
    (list<str>, the OSM categories that chose the tile), ``period_start``/``period_end``
    (list<date32>[12], the half-open monthly periods) and ``geometry``. :func:`read_sample_table`
    reads it back (it only needs ``tile_id`` and ``centre_date``).
    """
    import geopandas as gpd

    rows = []
    geoms = []
    for s in samples:
        lon, lat = s.tile.centre_lonlat
        periods = s.periods
        rows.append(
            {"tile_id": s.tile.id, "epsg": s.tile.epsg, "col": s.tile.col, "row": s.tile.row,
             "centre_lon": lon, "centre_lat": lat, "centre_date": pd.Timestamp(s.centre),
             "categories": list(s.categories), "period_start": [p.start for p in periods],
             "period_end": [p.end for p in periods]}
        )  # fmt: skip
        geoms.append(s.tile.polygon_lonlat())
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    columns = ["tile_id", "epsg", "col", "row", "centre_lon", "centre_lat", "centre_date", "categories",
               "period_start", "period_end"]  # fmt: skip
    gdf = gpd.GeoDataFrame(pd.DataFrame(rows, columns=columns), geometry=geoms, crs="EPSG:4326")
    gdf.to_parquet(path, index=False)
