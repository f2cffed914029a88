"""The twin's STAC documents have PC's exact shape, and real PC JSON loads into it unchanged."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
import rasterio

from olmoearth_twin import Catalog, Twin

pytestmark = pytest.mark.twin
COLLECTION = "sentinel-2-l2a"
# Links stac-fastapi writes itself (to the server's own URL); every other field must survive unchanged.
API_LINK_RELS = {
    "self",
    "parent",
    "root",
    "collection",
    "items",
    "http://www.opengis.net/def/rel/ogc/1.0/queryables",
}


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def _json_type(value: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), "null")


def _non_api_links(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [link for link in doc["links"] if link["rel"] not in API_LINK_RELS]


def test_real_pc_item_loads_unchanged_and_is_retrievable(twin: Twin, real_item: dict[str, Any]) -> None:
    twin.load_items([real_item])
    got = _get(f"{twin.stac_url}/collections/{COLLECTION}/items/{real_item['id']}")
    for key in real_item:
        if key != "links":
            assert got[key] == real_item[key], key
    assert _non_api_links(got) == _non_api_links(real_item)
    self_link = next(link for link in got["links"] if link["rel"] == "self")
    assert self_link["href"].startswith(twin.stac_url)


def test_collection_is_the_real_pc_document(twin: Twin, fixtures_dir) -> None:
    real = json.loads((fixtures_dir / "stac-extracted/sentinel-2-l2a.collection.json").read_text())
    got = _get(f"{twin.stac_url}/collections/{COLLECTION}")
    for key in real:
        if key != "links":
            assert got[key] == real[key], key
    assert _non_api_links(got) == _non_api_links(real)


def test_generated_items_have_pc_asset_and_property_schema(twin: Twin, real_item: dict[str, Any]) -> None:
    page = _get(f"{twin.stac_url}/collections/{COLLECTION}/items?limit=100")
    generated = [f for f in page["features"] if f["id"] != real_item["id"]]
    assert len(generated) >= 10
    want_assets = {k: (a["roles"], a["type"], a.get("title")) for k, a in real_item["assets"].items()}
    want_props = {k: _json_type(v) for k, v in real_item["properties"].items()}
    for item in generated:
        # Key order is not compared: pgstac returns jsonb, whose key order differs from PC's responses.
        assert set(item) == set(real_item), "top-level keys"
        assert {k: (a["roles"], a["type"], a.get("title")) for k, a in item["assets"].items()} == want_assets
        assert {k: _json_type(v) for k, v in item["properties"].items()} == want_props, item["id"]
        assert item["stac_extensions"] == real_item["stac_extensions"]
        for key, asset in item["assets"].items():
            assert set(asset) == set(real_item["assets"][key]), key
            if key not in ("tilejson", "rendered_preview"):
                assert asset["href"].startswith("https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/")
        assert item["properties"]["datetime"].endswith(".024000Z")
        assert f"_T{item['properties']['s2:mgrs_tile']}_" in item["id"]


def test_asset_proj_fields_describe_the_written_cogs(twin_catalog: Catalog) -> None:
    account_container = twin_catalog.blobs_dir / "sentinel2l2a01" / "sentinel2-l2"
    prefix = "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/"
    item = twin_catalog.items()[0]
    epsg = item["properties"]["proj:epsg"]
    for key in ("B02", "B05", "B01", "SCL", "visual", "AOT"):
        asset = item["assets"][key]
        with rasterio.open(account_container / asset["href"][len(prefix) :]) as ds:
            assert ds.crs.to_epsg() == epsg
            assert list(ds.shape) == asset["proj:shape"]
            assert list(ds.transform)[:6] == asset["proj:transform"]
            assert list(ds.bounds) == asset["proj:bbox"]
            assert ds.nodata == 0
            assert ds.block_shapes[0] == (512, 512), "tiled in 512 px blocks"
            if max(ds.shape) > 512:
                assert ds.overviews(1), "cloud-optimised: overviews past one 512 px block"
    # Granule grid: a 109.8 km MGRS square whose corner is 20 m off the 100 km grid (as 53NKG on PC).
    x0, y1 = item["assets"]["B01"]["proj:bbox"][0], item["assets"]["B01"]["proj:bbox"][3]
    gx, gy = 100_000 * ((x0 + 20) // 100_000) - 20, 100_000 * ((y1 - 20) // 100_000 + 1) + 20
    assert (x0 - gx) % 60 == 0 and (gy - y1) % 60 == 0, "COG grid = the granule's 60 m grid"


def test_queryables_make_cloud_cover_numeric(twin: Twin) -> None:
    doc = _get(f"{twin.stac_url}/collections/{COLLECTION}/queryables")
    assert doc["properties"]["eo:cloud_cover"]["type"] == "number"
    assert doc["properties"]["proj:epsg"]["type"] == ["integer", "null"]
