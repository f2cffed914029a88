"""Tiles on the ±180° meridian: a split lon/lat outline, and searches that find exactly their items.

Taveuni (Fiji) at 179.999° E, 16.8° S lies in UTM zone 60 but its tile reaches past 180°; before the
outline was split it spanned 359.99° of longitude, so an ``intersects`` search matched every scene of
its latitude strip. The twin test loads real-schema Sentinel-2 items (the recorded Planetary Computer
item, re-footprinted) on both sides of the meridian and at 0.4–330 km from the tile.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json

import geopandas as gpd
import numpy as np
import pystac_client
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely.geometry import MultiPolygon, Point, box, mapping, shape

from olmoearth_data.grid import Tile, tile_for_lonlat
from olmoearth_data.periods import Period
from olmoearth_data.samples import Sample, write_sample_table
from olmoearth_data.sources import get_source
from olmoearth_data.stac.search import search_period
from olmoearth_data.stac.tile_index import TileIndexRef, index_items

TAVEUNI = (179.999, -16.8)
GEOD = Geod(ellps="WGS84")


def _area_m2(geom) -> float:
    return abs(GEOD.geometry_area_perimeter(geom)[0])


@pytest.mark.parametrize(
    ("lon", "lat", "max_width"),
    [
        (*TAVEUNI, 0.05),
        (-179.999, 52.0, 0.05),
        (180.0, 65.5, 0.1),
        (179.9999, 89.9, 30.0),
        (179.99, -85.0, 0.5),
    ],
    ids=["taveuni", "aleutians", "chukotka", "ups-north", "ups-south"],
)
def test_meridian_tile_outline_is_split_into_two_small_valid_parts(
    lon: float, lat: float, max_width: float
) -> None:
    tile = tile_for_lonlat(lon=lon, lat=lat)
    outline = tile.polygon_lonlat()
    assert isinstance(outline, MultiPolygon) and outline.is_valid and len(outline.geoms) == 2
    west, east = sorted(outline.geoms, key=lambda p: p.bounds[0])
    assert west.bounds[0] == -180.0 and east.bounds[2] == 180.0  # cut exactly at the meridian
    width = sum(p.bounds[2] - p.bounds[0] for p in outline.geoms)
    assert width < max_width, "no part spans the globe (degrees of longitude; near a pole 2.56 km is many)"
    # the parts together are the 2560 m square: geodesic area within 1.5 % (map scale: UTM 0.9996–1.001,
    # UPS 0.994 at the pole, so a polar tile is up to 1.2 % larger on the ground)
    assert _area_m2(outline) == pytest.approx(2560.0**2, rel=1.5e-2)
    assert outline.distance(Point(((lon + 180.0) % 360.0) - 180.0, lat)) < 1e-9


def test_tile_away_from_the_meridian_is_one_polygon_and_unchanged_in_area() -> None:
    tile = Tile.from_id("EPSG:32610_248_-2176")
    outline = tile.polygon_lonlat()
    assert outline.geom_type == "Polygon" and outline.is_valid
    assert _area_m2(outline) == pytest.approx(2560.0**2, rel=5e-3)
    assert outline.contains(Point(*tile.centre_lonlat))


@pytest.mark.parametrize("epsg", [5041, 5042])
def test_tile_holding_a_pole_is_the_cap_beyond_its_outline(epsg: int) -> None:
    tile = Tile(epsg, 781, -782)  # x, y = 2 000 000 m: the pole
    outline = tile.polygon_lonlat()
    assert outline.is_valid and outline.bounds[0] == -180.0 and outline.bounds[2] == 180.0
    assert _area_m2(outline) == pytest.approx(2560.0**2, rel=2e-2)  # the cap's seam is interpolated


def test_sample_table_geometry_is_the_split_outline(tmp_path) -> None:
    tile = tile_for_lonlat(lon=TAVEUNI[0], lat=TAVEUNI[1])
    path = tmp_path / "samples.parquet"
    write_sample_table(path, samples=[Sample(tile, dt.date(2022, 6, 15))])
    geom = gpd.read_parquet(path).geometry.iloc[0]
    assert geom.geom_type == "MultiPolygon" and geom.equals_exact(tile.polygon_lonlat(), 1e-9)
    assert geom.bounds[2] - geom.bounds[0] == 360.0 and all(
        p.bounds[2] - p.bounds[0] < 0.05 for p in geom.geoms
    )


def _footprints() -> dict[str, dict]:
    """Item footprints around the Taveuni tile: three that touch it, five that do not (GeoJSON)."""

    def split(west: float, east: float, south: float, north: float) -> dict:  # west > east: crosses
        return mapping(MultiPolygon([box(west, south, 180.0, north), box(-180.0, south, east, north)]))

    return {
        "across": split(179.5, -179.5, -17.3, -16.3),  # a granule cut at the meridian, as PC stores it
        "west-side": mapping(box(179.0, -17.2, 179.998, -16.4)),
        "east-side": mapping(box(-179.995, -17.2, -179.0, -16.4)),
        "near-west": mapping(box(179.90, -17.2, 179.99, -16.4)),  # ~0.4 km short of the tile
        "near-east": mapping(box(-179.97, -17.2, -179.5, -16.4)),  # ~1.2 km short
        "far-west": mapping(box(176.5, -17.2, 177.5, -16.4)),  # ~260–360 km west, same latitudes
        "far-east": mapping(box(-177.2, -17.2, -176.5, -16.4)),  # ~300–370 km east, same latitudes
        "far-south": split(179.5, -179.5, -20.0, -19.5),  # ~300 km south, across the meridian
    }


TOUCHING = {"across", "west-side", "east-side"}


def test_tile_index_lookup_finds_exactly_the_footprints_touching_the_tile() -> None:
    tile = tile_for_lonlat(lon=TAVEUNI[0], lat=TAVEUNI[1])
    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": g, "properties": {"tile": name, "href": f"{name}.tif"}}
            for name, g in _footprints().items()
        ],
    }
    ref = TileIndexRef(url="http://example.invalid/index.geojson", base="http://example.invalid/")
    items = index_items(doc=doc, ref=ref, tile=tile, collection="wri-canopy-height", single_asset="data")
    assert {i.id for i in items} == TOUCHING


@pytest.mark.twin
@pytest.mark.filterwarnings("ignore::pystac_client.warnings.DoesNotConformTo")
def test_search_at_the_meridian_returns_exactly_the_scenes_touching_the_tile(twin) -> None:
    from olmoearth_twin.fixtures import S2_COLLECTION, S2_ITEM, fixture_path

    collection_id = (
        "sentinel-2-l2a-antimeridian-test"  # its own collection: other tests' searches see nothing
    )
    collection = json.loads(fixture_path(S2_COLLECTION).read_text())
    collection["id"] = collection_id
    real = json.loads(fixture_path(S2_ITEM).read_text())["features"][0]
    items = []
    for name, geometry in _footprints().items():
        item = copy.deepcopy(real)
        item.update(id=f"antimeridian-{name}", collection=collection_id, geometry=geometry)
        item["bbox"] = list(shape(geometry).bounds)
        item["properties"]["datetime"] = "2022-06-10T22:15:19.024000Z"
        item["links"] = []
        items.append(item)
    twin.load_collections([collection])
    twin.load_items(items)

    tile = tile_for_lonlat(lon=TAVEUNI[0], lat=TAVEUNI[1])
    source = dataclasses.replace(get_source("sentinel2_l2a"), collection=collection_id)
    client = pystac_client.Client.open(twin.stac_url)
    found = search_period(
        client=client, source=source, tile=tile, period=Period(dt.date(2022, 6, 1), dt.date(2022, 7, 1))
    )
    names = {d["id"].removeprefix("antimeridian-") for d in found.items}
    assert names == TOUCHING
    outline = tile.polygon_lonlat()
    assert all(shape(d["geometry"]).intersects(outline) for d in found.items)
    # the fixture tells the two apart: the old unsplit outline (359.99° wide) also matches the far
    # scenes of the tile's latitude strip, 260-370 km away
    unsplit = shapely.transform(
        tile.polygon().segmentize(320.0),
        lambda xy: np.column_stack(Transformer.from_crs(tile.epsg, 4326, always_xy=True).transform(*xy.T)),
    )
    assert unsplit.bounds[2] - unsplit.bounds[0] > 359.0
    old = client.search(collections=[collection_id], intersects=mapping(unsplit), limit=100)
    assert {d["id"].removeprefix("antimeridian-") for d in old.items_as_dicts()} >= {"far-west", "far-east"}
