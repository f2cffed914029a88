"""The real planetary_computer SDK signs through the SAS stand-in; GDAL reads signed assets by range."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import odc.stac
import planetary_computer
import pystac
import pystac_client
import pytest
import rasterio
from rasterio.windows import Window

from olmoearth_data.grid import Tile
from olmoearth_twin import Catalog, Twin, rewrite_href
from olmoearth_twin.servers.sas import SasIssuer
from olmoearth_twin.servers.twin import reset_pc_sdk

pytestmark = pytest.mark.twin
PREFIX = "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/"


def _status(
    url: str, *, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture(scope="module")
def item(twin_catalog: Catalog) -> pystac.Item:
    return pystac.Item.from_dict(twin_catalog.items()[0])


@pytest.fixture(scope="module")
def sas_fixture(fixtures_dir) -> dict[str, Any]:
    return json.loads((fixtures_dir / "sas/sas-token-response.issue295.json").read_text())


def test_token_endpoint_has_pc_shape(twin: Twin, sas_fixture: dict[str, Any]) -> None:
    for path in ("sentinel-2-l2a", "sentinel2l2a01/sentinel2-l2"):
        status, headers, body = _status(f"{twin.sas_url}/{path}")
        assert status == 200 and headers["Content-Type"] == "application/json"
        token = json.loads(body)
        assert list(token) == list(sas_fixture)
        assert [k for k, _ in parse_qsl(token["token"])] == [k for k, _ in parse_qsl(sas_fixture["token"])]
        fields = dict(parse_qsl(token["token"]))
        assert fields["se"] == token["msft:expiry"] and (fields["sp"], fields["sr"], fields["sv"]) == (
            "rl",
            "c",
            "2021-06-08",
        )
        expiry = dt.datetime.strptime(token["msft:expiry"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        assert 44 * 60 < (expiry - dt.datetime.now(dt.UTC)).total_seconds() <= 45 * 60
        assert "%3A" in token["token"], "times are URL-encoded as in PC's tokens"
    assert _status(f"{twin.sas_url}/no-such-collection")[0] == 404


def test_sdk_signs_item_through_pc_sdk_sas_url(twin: Twin, item: pystac.Item) -> None:
    reset_pc_sdk()  # earlier tests in the session may have left a cached token for this container
    issued = twin.issuer.issued
    signed = planetary_computer.sign(item)
    assert twin.issuer.issued > issued, "the SDK must have fetched a token from the stand-in"
    assert "msft:expiry" not in item.properties and signed is not item
    for key, asset in signed.assets.items():
        if key in ("tilejson", "rendered_preview"):
            assert asset.href == item.assets[key].href  # not blob URLs: left unsigned, as by PC
            continue
        parts = urlsplit(asset.href)
        assert (
            asset.href.startswith(PREFIX) and {"st", "se", "sp", "sig"} <= dict(parse_qsl(parts.query)).keys()
        )


def test_gdal_reads_a_window_of_a_signed_asset_with_range_requests(
    twin: Twin, twin_catalog: Catalog, item: pystac.Item
) -> None:
    href = item.assets["B04"].href
    url = rewrite_href(planetary_computer.sign(href))
    assert url.startswith(f"{twin.assets_url}/sentinel2l2a01/sentinel2-l2/") and "sig=" in url
    ranged = twin.blob_stats.range_requests
    window = Window(col_off=40, row_off=30, width=256, height=200)
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"), rasterio.open(url) as ds:
        remote = ds.read(1, window=window)
        assert ds.profile["dtype"] == "uint16" and ds.nodata == 0
    assert twin.blob_stats.range_requests > ranged, "GDAL must have used HTTP range requests"
    with rasterio.open(twin_catalog.blobs_dir / "sentinel2l2a01/sentinel2-l2" / href[len(PREFIX) :]) as ds:
        local = ds.read(1, window=window)
    np.testing.assert_array_equal(remote, local)


def test_unsigned_or_tampered_reads_get_403(twin: Twin, item: pystac.Item) -> None:
    href = item.assets["B04"].href
    status, headers, body = _status(rewrite_href(href))
    assert status == 403 and headers["x-ms-error-code"] == "AuthenticationFailed" and b"<Error>" in body
    with pytest.raises(rasterio.errors.RasterioIOError), rasterio.open(rewrite_href(href)):
        pass
    signed = rewrite_href(planetary_computer.sign(href))
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H%%3A%M%%3A%SZ")
    query = dict(part.split("=", 1) for part in urlsplit(signed).query.split("&"))
    extended = signed.replace(f"se={query['se']}", f"se={later}")
    assert _status(extended)[0] == 403, "changing the expiry must break the signature"
    other = signed.replace("/sentinel2-l2/", "/other-container/")
    assert _status(other)[0] == 403, "a token is valid for its own container only"


def test_expired_token_is_rejected() -> None:
    now = [dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)]
    issuer = SasIssuer(ttl=dt.timedelta(minutes=45), clock=lambda: now[0])
    token = issuer.issue(account="acct", container="cont")["token"]
    assert issuer.check(account="acct", container="cont", query=token) is None
    now[0] += dt.timedelta(minutes=46)
    assert "expiry" in (issuer.check(account="acct", container="cont", query=token) or "")
    assert issuer.check(account="acct", container="cont", query="") is not None


def test_range_semantics(twin: Twin, item: pystac.Item) -> None:
    url = rewrite_href(planetary_computer.sign(item.assets["product-metadata"].href))
    status, headers, body = _status(url)
    size = len(body)
    assert status == 200 and headers["Accept-Ranges"] == "bytes" and int(headers["Content-Length"]) == size
    status, headers, head_body = _status(url, method="HEAD")
    assert status == 200 and int(headers["Content-Length"]) == size and head_body == b""
    status, headers, part = _status(url, headers={"Range": "bytes=10-109"})
    assert status == 206 and part == body[10:110] and headers["Content-Range"] == f"bytes 10-109/{size}"
    status, _, part = _status(url, headers={"Range": "bytes=-50"})
    assert status == 206 and part == body[-50:]
    status, _, part = _status(url, headers={"Range": f"bytes={size - 5}-"})
    assert status == 206 and part == body[-5:]
    status, headers, _ = _status(url, headers={"Range": f"bytes={size}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
    missing = rewrite_href(planetary_computer.sign(f"{PREFIX}does/not/exist.tif"))
    assert _status(missing)[0] == 404


def test_odc_stac_loads_a_tile_matching_the_manifest(twin: Twin, manifest: dict[str, Any]) -> None:

    sample = manifest["samples"][0]
    tile = Tile.from_id(sample["tile_id"])
    entries = {e["id"]: e for e in manifest["items"]}
    ids = [i for p in sample["periods"] for i in p["items"]][:3]
    client = pystac_client.Client.open(twin.stac_url)
    items = list(client.search(ids=ids, collections=["sentinel-2-l2a"]).items())
    data = odc.stac.load(
        items,
        bands=["SCL", "B04"],
        geobox=tile.geobox(pixel_size_m=10),
        dtype="uint16",
        nodata=0,
        resampling={"SCL": "nearest", "*": "bilinear"},
        groupby="id",
        patch_url=lambda href: rewrite_href(planetary_computer.sign(href)),
    )
    assert data.sizes["time"] == len(items) == len(ids)
    for i, item in enumerate(items):
        scl = data["SCL"].isel(time=i).values
        stats = entries[item.id]["tile_stats"][tile.id]
        assert float((scl != 0).mean()) == pytest.approx(stats["valid_fraction"], abs=1e-6)
        assert float(np.isin(scl, (8, 9, 10)).mean()) == pytest.approx(stats["cloud_fraction"], abs=1e-6)
