"""The UTM tile grid: ids, bounds, lon/lat → tile, UPS, bandset pixel grids."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Transformer
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info

from olmoearth_data.grid import Tile, tile_for_lonlat, tiles_for_lonlats, utm_epsg


def test_reference_tile_id_round_trips_to_its_bounds() -> None:
    # data spec §2.1: EPSG:32610_248_-2176 spans x 634,880 → 637,440 m and y 5,570,560 → 5,568,000 m.
    tile = Tile.from_id("EPSG:32610_248_-2176")
    assert (tile.epsg, tile.col, tile.row) == (32610, 248, -2176)
    assert tile.bounds == (634880.0, 5568000.0, 637440.0, 5570560.0)
    assert tile.id == "EPSG:32610_248_-2176"
    lon, lat = tile.centre_lonlat
    assert tile_for_lonlat(lon=lon, lat=lat) == tile


@pytest.mark.parametrize("bad", ["EPSG:32610_248", "32610_248_-2176", "EPSG:x_1_2", ""])
def test_malformed_tile_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not a tile id"):
        Tile.from_id(bad)


@pytest.mark.parametrize(
    ("lon", "lat", "epsg"),
    [
        (-122.3, 37.8, 32610),  # West Oakland, north
        (10.07, 48.136, 32632),  # Bavaria
        (26.95, 60.53, 32635),  # Kotka
        (151.2, -33.87, 32756),  # Sydney, south
        (-70.6, -33.45, 32719),  # Santiago, south, west
        (0.5, 0.0001, 32631),
        (0.5, -0.0001, 32731),
        (179.99, 10.0, 32660),
        (-179.99, -10.0, 32701),
        (10.0, 84.5, 5041),  # UPS North
        (10.0, -80.5, 5042),  # UPS South
    ],
)
def test_point_maps_to_its_crs_and_a_tile_that_contains_it(lon: float, lat: float, epsg: int) -> None:
    tile = tile_for_lonlat(lon=lon, lat=lat)
    assert tile.epsg == epsg
    assert tile.contains_lonlat(lon=lon, lat=lat)
    x, y = Transformer.from_crs(4326, epsg, always_xy=True).transform(lon, lat)
    xmin, ymin, xmax, ymax = tile.bounds
    assert xmin <= x < xmax and ymin < y <= ymax


def test_negative_rows_cols_and_ups() -> None:
    # UTM northings are positive in both hemispheres (false northing 10,000 km in the south), so
    # rows, which count downward from y = 0, are negative; ids and bounds must handle either sign.
    assert tile_for_lonlat(lon=151.2, lat=-33.87).row < 0
    assert tile_for_lonlat(lon=-122.3, lat=37.8).row < 0
    odd = Tile.from_id("EPSG:32701_-3_7")
    assert (odd.col, odd.row) == (-3, 7)
    assert odd.bounds == (-7680.0, -20480.0, -5120.0, -17920.0)
    assert Tile.from_id(odd.id) == odd
    for lon, lat in [(-120.0, -85.0), (45.0, 87.0), (-90.0, 89.9)]:
        t = tile_for_lonlat(lon=lon, lat=lat)
        assert t.epsg in (5041, 5042)
        assert t.contains_lonlat(lon=lon, lat=lat)
        assert tile_for_lonlat(lon=t.centre_lonlat[0], lat=t.centre_lonlat[1]) == t


def test_zone_borders_follow_pyproj_first_hit() -> None:
    for lon, lat in [(-120.0, 37.0), (6.0, 45.0), (0.0, 10.0), (12.0, 0.0), (-180.0, 5.0), (180.0, 5.0)]:
        infos = query_utm_crs_info(
            datum_name="WGS 84",
            area_of_interest=AreaOfInterest(lon, lat, lon, lat),
        )
        first = next(int(i.code) for i in infos if i.code.startswith(("326", "327")))
        assert utm_epsg(lon=lon, lat=lat) == first
        tile = tile_for_lonlat(lon=lon, lat=lat)
        assert tile.contains_lonlat(lon=lon, lat=lat)


def test_fast_path_agrees_with_pyproj_database_everywhere() -> None:
    rng = np.random.default_rng(0)
    for lon, lat in zip(rng.uniform(-180, 180, 40), rng.uniform(-79.9, 83.9, 40)):
        infos = query_utm_crs_info(datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat))
        first = next(int(i.code) for i in infos if i.code.startswith(("326", "327")))
        assert utm_epsg(lon=float(lon), lat=float(lat)) == first


def test_vectorised_matches_scalar() -> None:
    rng = np.random.default_rng(1)
    lon = rng.uniform(-180, 180, 200)
    lat = rng.uniform(-89, 89, 200)
    assert tiles_for_lonlats(lon=lon, lat=lat) == [
        tile_for_lonlat(lon=float(a), lat=float(b)) for a, b in zip(lon, lat)
    ]


def test_out_of_range_lonlat_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        tile_for_lonlat(lon=200.0, lat=0.0)


@pytest.mark.parametrize(("pixel_size", "n"), [(10.0, 256), (20.0, 128), (40.0, 64), (2.5, 1024)])
def test_bandset_grids(pixel_size: float, n: int) -> None:
    tile = Tile.from_id("EPSG:32610_248_-2176")
    gbox = tile.geobox(pixel_size_m=pixel_size)
    assert gbox.shape == (n, n)
    assert gbox.crs.epsg == 32610
    assert tuple(gbox.transform)[:6] == (pixel_size, 0.0, 634880.0, 0.0, -pixel_size, 5570560.0)
    left, bottom, right, top = gbox.boundingbox
    assert (left, bottom, right, top) == tile.bounds


def test_pixel_size_that_does_not_divide_the_tile_is_refused() -> None:
    with pytest.raises(ValueError, match="does not divide"):
        Tile(32610, 0, 0).shape(pixel_size_m=30.0)


def test_lonlat_polygon_contains_centre_and_coarse_cell() -> None:
    tile = Tile.from_id("EPSG:32610_248_-2176")
    from shapely.geometry import Point

    assert tile.polygon_lonlat().contains(Point(*tile.centre_lonlat))
    assert tile.coarse_cell() == (32610, 15, -136)
    assert Tile(32610, -1, -17).coarse_cell() == (32610, -1, -2)
