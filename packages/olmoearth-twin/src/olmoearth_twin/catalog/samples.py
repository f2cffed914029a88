"""The (tile, centre date) samples a twin catalogue is generated for.

Samples are :class:`olmoearth_data.samples.Sample` rows, the same type the sampler writes and the build
reads; a twin for any sample table is ``read_sample_table(path)`` away.

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

The first two rows (one granule) are the small table the tests use. :data:`DEMO_SAMPLES` (the first
seven rows and West Oakland) is what ``make demo`` builds and ``make twin`` serves.
"""

from __future__ import annotations

import datetime as dt

from olmoearth_data.grid import Tile
from olmoearth_data.samples import Sample


def _row(tile_id: str, centre: dt.date) -> Sample:
    return Sample(Tile.from_id(tile_id), centre)


def sample_key(sample: Sample) -> dict[str, str]:
    """``{"tile_id", "centre"}`` of a sample: how manifests and catalogue cache keys record it."""
    return {"tile_id": sample.tile.id, "centre": sample.centre.isoformat()}


DEFAULT_SAMPLES: tuple[Sample, ...] = (
    _row("EPSG:32610_248_-2176", dt.date(2022, 1, 15)),
    _row("EPSG:32610_249_-2176", dt.date(2022, 1, 15)),
    _row("EPSG:32633_274_-2050", dt.date(2023, 6, 15)),
    _row("EPSG:32633_273_-2050", dt.date(2023, 6, 15)),
    _row("EPSG:32736_200_-3835", dt.date(2020, 9, 1)),
    _row("EPSG:32736_201_-3835", dt.date(2020, 9, 1)),
    _row("EPSG:32629_90_-1085", dt.date(2024, 9, 1)),
    _row("EPSG:32629_91_-1085", dt.date(2024, 9, 1)),
    # The OSM fixtures' areas (fixtures/osm/): West Oakland (CONUS, so CDL and NAIP apply; the tile holds
    # lon -122.300 lat 37.807 and the whole OSM bbox), Bavaria, and Kotka (its bbox spans four tiles).
    _row("EPSG:32610_219_-1635", dt.date(2021, 7, 1)),
    _row("EPSG:32632_226_-2083", dt.date(2022, 7, 1)),
    _row("EPSG:32635_193_-2622", dt.date(2023, 7, 1)),
    _row("EPSG:32635_194_-2622", dt.date(2023, 7, 1)),
    _row("EPSG:32635_193_-2621", dt.date(2023, 7, 1)),
    _row("EPSG:32635_194_-2621", dt.date(2023, 7, 1)),
)
#: Two tiles in one granule: the test catalogue.
SMALL_SAMPLES: tuple[Sample, ...] = DEFAULT_SAMPLES[:2]
#: West Oakland: the CONUS sample (CDL, NAIP) and the OSM raster's input area.
OAKLAND: Sample = DEFAULT_SAMPLES[8]
#: ``make demo`` and ``make twin``: British Columbia, Hungary, East Africa, Western Sahara (the first
#: seven rows) and West Oakland last, so every modality of the ``default`` set has data somewhere.
DEMO_SAMPLES: tuple[Sample, ...] = (*DEFAULT_SAMPLES[:7], OAKLAND)


def default_samples(*, n_tiles: int) -> tuple[Sample, ...]:
    """The first ``n_tiles`` rows of :data:`DEFAULT_SAMPLES` (1 ≤ n ≤ len(DEFAULT_SAMPLES))."""
    if not 1 <= n_tiles <= len(DEFAULT_SAMPLES):
        raise ValueError(f"--tiles must be between 1 and {len(DEFAULT_SAMPLES)}, got {n_tiles}")
    return DEFAULT_SAMPLES[:n_tiles]
