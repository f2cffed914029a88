"""The generated ``naip`` collection: PC's item schema per era, footprints, dates, readable COGs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import planetary_computer
import pystac_client
import pytest
import rasterio
from shapely.geometry import shape

from olmoearth_twin import Catalog, Twin, rewrite_href
from olmoearth_twin.catalog.naip import _TEMPLATES, naip_collection, quarter_quads, recorded_items
from olmoearth_twin.catalog.pc_item import json_types
from olmoearth_twin.testing import NAIP_TEST_SAMPLES

pytestmark = pytest.mark.twin


def test_quad_naming_matches_recorded_items(fixtures_dir: Path) -> None:
    for item in recorded_items(fixtures=fixtures_dir):
        _, _, quad, quadrant, *_ = item["id"].split("_")
        centre = shape(item["geometry"]).centroid
        ((got_quad, got_quadrant, _),) = quarter_quads(polygon=centre.buffer(1e-4))
        assert (got_quad, got_quadrant) == (quad, quadrant), item["id"]


def test_items_have_pc_shape_per_era(twin_naip: Catalog, fixtures_dir: Path) -> None:
    real = {i["id"]: i for i in recorded_items(fixtures=fixtures_dir)}
    items = twin_naip.items()
    assert {i["properties"]["naip:year"] for i in items} == {"2016", "2018", "2020", "2022"}
    for item in items:
        template = real[_TEMPLATES[int(item["properties"]["naip:year"])]]
        assert set(item) == set(template)
        assert json_types(item["properties"]) == json_types(template["properties"])
        assert {k: json_types(v) for k, v in item["assets"].items()} == {
            k: json_types(v) for k, v in template["assets"].items()
        }
        assert item["stac_extensions"] == template["stac_extensions"]
        assert item["id"].startswith("ca_m_37122") and "/v002/ca/" in item["assets"]["image"]["href"]
        assert all("vt" not in a["href"].split("/v002/")[-1] for a in item["assets"].values())


def test_footprints_contain_the_tile_on_several_dates(twin_naip: Catalog) -> None:
    (row,) = twin_naip.manifest()["samples"]
    tile = NAIP_TEST_SAMPLES[0].tile.polygon_lonlat()
    by_id = {i["id"]: i for i in twin_naip.items()}
    dates = {by_id[i]["properties"]["datetime"][:10] for i in row["containing"]}
    assert len(dates) >= 4
    assert all(dt.date(2016, 6, 1) <= dt.date.fromisoformat(d) < dt.date(2024, 6, 1) for d in dates)
    assert all(shape(by_id[i]["geometry"]).contains(tile) for i in row["containing"])
    assert set(row["containing"]) < set(row["intersecting"])


def test_search_sign_and_read(twin: Twin, twin_naip: Catalog, fixtures_dir: Path) -> None:
    client = pystac_client.Client.open(twin.stac_url)
    assert (
        client.get_collection("naip").to_dict()["msft:storage_account"]
        == naip_collection(fixtures=fixtures_dir)["msft:storage_account"]
    )
    tile = NAIP_TEST_SAMPLES[0].tile.polygon_lonlat()
    found = list(
        client.search(collections=["naip"], intersects=tile, datetime="2016-06-01/2024-05-31").items()
    )
    assert {i.id for i in found} == set(twin_naip.manifest()["samples"][0]["intersecting"])
    item = planetary_computer.sign(found[0])
    props = next(i for i in twin_naip.items() if i["id"] == item.id)["properties"]  # pystac migrates proj:*
    with rasterio.open(rewrite_href(item.assets["image"].href)) as ds:
        assert ds.count == 4 and ds.dtypes[0] == "uint8"
        assert ds.crs.to_epsg() == props["proj:epsg"]
        assert list(ds.transform)[:6] == props["proj:transform"][:6]
        assert ds.read(4, window=((0, 16), (0, 16))).max() > 0
