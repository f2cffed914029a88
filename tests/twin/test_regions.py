"""The twin's regions (the crop a non-S2 item covers) stay local: samples of one UTM zone and date
thousands of km apart get regions of their own, neighbours share one."""

from __future__ import annotations

import datetime as dt

from olmoearth_data.grid import tile_for_lonlat
from olmoearth_data.samples import Sample
from olmoearth_twin.catalog.regions import MAX_SIDE_M, group_regions

CENTRE = dt.date(2022, 7, 1)


def test_far_samples_of_one_zone_get_regions_of_their_own() -> None:
    paris = tile_for_lonlat(lon=2.35, lat=48.85)
    lagos = tile_for_lonlat(lon=3.4, lat=6.45)
    assert paris.epsg == lagos.epsg == 32631  # 4,700 km apart in one UTM zone
    neighbour = tile_for_lonlat(lon=2.39, lat=48.85)
    assert neighbour != paris
    samples = [Sample(paris, CENTRE), Sample(lagos, CENTRE), Sample(neighbour, CENTRE)]
    regions = group_regions(samples=samples)
    assert [r.key for r in regions] == ["32631_2022-07-01", "32631_2022-07-01_1"]
    assert [len(r.samples) for r in regions] == [2, 1]  # Paris and its neighbour share the first
    for region in regions:
        x0, y0, x1, y1 = region.bounds
        assert max(x1 - x0, y1 - y0) <= MAX_SIDE_M + 1_000
