"""Sample tables: the (tile id, centre date) pairs a twin catalogue is generated for.

The default table has four pairs of neighbouring tiles, chosen to exercise what real PC data does:

* ``10UFA`` (British Columbia): both tiles in one granule; the centre date 2022-01-15 makes the
  12 periods straddle 2022-01-25, so scenes of baseline 03.01 (no offset) and 04.00 (+1000) mix.
* ``33TXN``/``33TYN`` (western Hungary): tiles in the 9.8 km overlap of two MGRS granules; the western
  tile sticks out of ``33TYN``, which covers it only partly. 2023, baseline 04.00.
* ``36MWD`` (East Africa, southern hemisphere, EPSG:327xx): 2020, baseline 02.12 only.
* ``29RKH`` (Western Sahara): the granule the real fixture pixels come from; 2024-25, baselines
  05.10/05.11.

* West Oakland, Bavaria, Kotka: the areas of the OSM fixtures (``fixtures/osm/``), so every modality of
  the twin covers them; West Oakland is the CONUS sample (USDA CDL, NAIP).

The first two rows (one granule) are the small table the tests use.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import yaml

from olmoearth_data.grid import Tile


@dataclass(frozen=True, order=True)
class Sample:
    """One sample: a 2.56 km grid tile (``EPSG:<code>_<col>_<row>``) and its centre date (UTC day)."""

    tile_id: str
    centre: dt.date

    @property
    def tile(self) -> Tile:
        return Tile.from_id(self.tile_id)

    def to_json(self) -> dict[str, str]:
        return {"tile_id": self.tile_id, "centre": self.centre.isoformat()}


DEFAULT_SAMPLES: tuple[Sample, ...] = (
    Sample("EPSG:32610_248_-2176", dt.date(2022, 1, 15)),
    Sample("EPSG:32610_249_-2176", dt.date(2022, 1, 15)),
    Sample("EPSG:32633_274_-2050", dt.date(2023, 6, 15)),
    Sample("EPSG:32633_273_-2050", dt.date(2023, 6, 15)),
    Sample("EPSG:32736_200_-3835", dt.date(2020, 9, 1)),
    Sample("EPSG:32736_201_-3835", dt.date(2020, 9, 1)),
    Sample("EPSG:32629_90_-1085", dt.date(2024, 9, 1)),
    Sample("EPSG:32629_91_-1085", dt.date(2024, 9, 1)),
    # The OSM fixtures' areas (fixtures/osm/): West Oakland (CONUS, so CDL and NAIP apply; the tile holds
    # lon -122.300 lat 37.807 and the whole OSM bbox), Bavaria, and Kotka (its bbox spans four tiles).
    Sample("EPSG:32610_219_-1635", dt.date(2021, 7, 1)),
    Sample("EPSG:32632_226_-2083", dt.date(2022, 7, 1)),
    Sample("EPSG:32635_193_-2622", dt.date(2023, 7, 1)),
    Sample("EPSG:32635_194_-2622", dt.date(2023, 7, 1)),
    Sample("EPSG:32635_193_-2621", dt.date(2023, 7, 1)),
    Sample("EPSG:32635_194_-2621", dt.date(2023, 7, 1)),
)
#: Two tiles in one granule: the test catalogue.
SMALL_SAMPLES: tuple[Sample, ...] = DEFAULT_SAMPLES[:2]


def default_samples(*, n_tiles: int) -> tuple[Sample, ...]:
    """The first ``n_tiles`` rows of :data:`DEFAULT_SAMPLES` (1 ≤ n ≤ len(DEFAULT_SAMPLES))."""
    if not 1 <= n_tiles <= len(DEFAULT_SAMPLES):
        raise ValueError(f"--tiles must be between 1 and {len(DEFAULT_SAMPLES)}, got {n_tiles}")
    return DEFAULT_SAMPLES[:n_tiles]


def load_samples(*, path: Path) -> tuple[Sample, ...]:
    """Read a sample table: CSV with columns ``tile_id,centre`` or YAML/JSON ``[{tile_id, centre}]``.

    ``centre_date`` (the column name of olmoearth-data's sample tables) is accepted for ``centre``.
    """
    text = Path(path).read_text()
    if Path(path).suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
    else:
        rows = yaml.safe_load(text)
    samples = []
    for row in rows:
        centre = row["centre"] if "centre" in row else row["centre_date"]
        centre = centre if isinstance(centre, dt.date) else dt.date.fromisoformat(str(centre).strip())
        Tile.from_id(str(row["tile_id"]).strip())  # validates the id
        samples.append(Sample(str(row["tile_id"]).strip(), centre))
    if not samples:
        raise ValueError(f"{path}: empty sample table")
    return tuple(samples)
