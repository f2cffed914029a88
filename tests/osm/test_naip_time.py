"""The optional NAIP centre-date rule against real recorded NAIP items served by the twin's pgstac."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml
from shapely.geometry import shape

from olmoearth_data.grid import tile_for_lonlat
from olmoearth_data.osm.time import TIME_END, TIME_START, NaipDates, centre_dates
from olmoearth_twin.fixtures import fixture_path

pytestmark = pytest.mark.twin


def _naip_collection() -> dict:
    """The real `naip` collection document, from the recorded `GET /collections` of Planetary Computer."""
    cassette = yaml.safe_load(fixture_path("stac-cassettes/TestAPI.test_links.yaml").read_text())
    for interaction in cassette["interactions"]:
        if interaction["request"]["uri"].endswith("/api/stac/v1/collections"):
            body = json.loads(interaction["response"]["body"]["string"])
            return next(c for c in body["collections"] if c["id"] == "naip")
    raise AssertionError("no GET /collections in the cassette")


@pytest.fixture(scope="module")
def naip_items(twin) -> list[dict]:
    items = []
    for page in ("page1", "page2"):
        doc = json.loads(fixture_path(f"stac-extracted/naip.search-post-paging-{page}.json").read_text())
        items += doc["features"]
    twin.load_collections([_naip_collection()])
    twin.load_items(items)
    return items


def test_naip_rule_uses_dates_of_items_that_contain_the_tile(twin, naip_items: list[dict]) -> None:
    lookup = NaipDates(stac_url=twin.stac_url)
    checked = 0
    for item in naip_items:
        centre = shape(item["geometry"]).centroid
        tile = tile_for_lonlat(lon=centre.x, lat=centre.y)
        poly = tile.polygon_lonlat()
        expected = sorted(
            dt.date.fromisoformat(i["properties"]["datetime"][:10])
            for i in naip_items
            if shape(i["geometry"]).contains(poly)
            and TIME_START <= dt.date.fromisoformat(i["properties"]["datetime"][:10]) < TIME_END
        )
        got = lookup(tile=tile, start=TIME_START, end=TIME_END)
        assert got == expected, tile.id
        if expected:
            checked += 1
            naip_date = centre_dates(tiles=[tile], seed=1, naip=lookup, force_uniform_prob=0.0)[tile]
            assert naip_date in expected
            uniform = centre_dates(tiles=[tile], seed=1, naip=lookup, force_uniform_prob=1.0)[tile]
            assert TIME_START <= uniform < TIME_END
    assert checked >= 3
