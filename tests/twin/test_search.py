"""pystac-client GET and POST searches against the twin return exactly what the manifest predicts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pystac_client
import pytest
from shapely.geometry import mapping

from olmoearth_data.grid import Tile
from olmoearth_data.periods import Period, monthly_periods
from olmoearth_twin import Twin

pytestmark = [
    pytest.mark.twin,
    # stac-fastapi 7 advertises sort as api.stacspec.org/v1.1.0; pystac-client 0.9 only knows v1.0.x.
    pytest.mark.filterwarnings("ignore::pystac_client.warnings.DoesNotConformTo"),
]
COLLECTION = "sentinel-2-l2a"


def _cloud(manifest: dict[str, Any]) -> dict[str, float]:
    return {e["id"]: e["eo:cloud_cover"] for e in manifest["items"]}


def _search(
    client: pystac_client.Client,
    *,
    tile: Tile,
    period: Period,
    method: str,
    limit: int = 2,
    query: dict[str, Any] | None = None,
) -> tuple[list[str], int]:
    """Ids in returned order and the number of pages it took."""
    search = client.search(
        collections=[COLLECTION],
        intersects=mapping(tile.polygon_lonlat()),
        datetime=period.stac_datetime(),
        query=query,
        sortby=[
            {"field": "properties.eo:cloud_cover", "direction": "asc"},
            {"field": "id", "direction": "asc"},
        ],
        limit=limit,
        method=method,
    )
    ids, pages = [], 0
    for page in search.pages_as_dicts():
        pages += 1
        ids += [f["id"] for f in page["features"]]
    return ids, pages


@pytest.fixture(scope="module")
def client(twin: Twin) -> pystac_client.Client:
    return pystac_client.Client.open(twin.stac_url)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_every_period_returns_the_manifest_items_in_cloud_order(client, manifest, method) -> None:
    empty = 0
    for sample in manifest["samples"]:
        tile = Tile.from_id(sample["tile_id"])
        periods = monthly_periods(centre=dt.date.fromisoformat(sample["centre"]))
        for period, expected in zip(periods, sample["periods"], strict=True):
            assert expected["start"] == period.start.isoformat()
            ids, pages = _search(client, tile=tile, period=period, method=method)
            assert ids == expected["items"], (sample["tile_id"], expected["start"])
            assert len(ids) == len(set(ids))
            assert pages == -(-len(ids) // 2)  # pystac-client yields no page for an empty result
            empty += not ids
    assert empty >= 1, "the small catalogue must contain at least one month without scenes"


def test_paging_with_limit_two_visits_every_item_once(client, manifest) -> None:
    sample = manifest["samples"][0]
    tile = Tile.from_id(sample["tile_id"])
    all_ids = [i for p in sample["periods"] for i in p["items"]]
    whole = Period(
        dt.date.fromisoformat(sample["periods"][0]["start"]),
        dt.date.fromisoformat(sample["periods"][-1]["end"]),
    )
    for method in ("GET", "POST"):
        ids, pages = _search(client, tile=tile, period=whole, method=method, limit=2)
        assert sorted(ids) == sorted(all_ids)
        assert len(ids) == len(set(ids))
        assert pages == -(-len(all_ids) // 2)
        clouds = [_cloud(manifest)[i] for i in ids]
        assert clouds == sorted(clouds)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_query_cloud_cover_lt(client, manifest, method) -> None:
    sample = manifest["samples"][1]
    tile = Tile.from_id(sample["tile_id"])
    centre = dt.date.fromisoformat(sample["centre"])
    cloud = _cloud(manifest)
    checked = 0
    for period, expected in zip(monthly_periods(centre=centre), sample["periods"], strict=True):
        want = [i for i in expected["items"] if cloud[i] < 30.0]
        ids, _ = _search(
            client, tile=tile, period=period, method=method, query={"eo:cloud_cover": {"lt": 30}}
        )
        assert ids == want
        checked += len(expected["items"]) - len(want)
    assert checked > 0, "the query must actually filter something out"


def test_search_response_shape(client, manifest, twin_catalog) -> None:
    # Up to 2024 and over this catalogue's granules: other tests may add the real 2025 PC item and
    # West Oakland's items (twin_oakland_s2) to the same twin.
    corners = list(zip(*(i["bbox"] for i in twin_catalog.items()), strict=True))
    bbox = [min(corners[0]), min(corners[1]), max(corners[2]), max(corners[3])]
    search = client.search(
        collections=[COLLECTION], bbox=bbox, datetime="../2024-12-31T23:59:59Z", limit=2, method="POST"
    )
    page = next(search.pages_as_dicts())
    assert page["type"] == "FeatureCollection"
    assert len(page["features"]) == 2
    assert {link["rel"] for link in page["links"]} >= {"root", "self", "next"}
    next_link = next(link for link in page["links"] if link["rel"] == "next")
    assert next_link["method"] == "POST" and "token" in next_link["body"]
    assert page.get("numberMatched") == len(manifest["items"])  # pgstac context is on
