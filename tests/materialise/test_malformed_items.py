"""Malformed and partial items from a real catalogue (issue 14, items 2, 4 and 7), on the twin.

A small extra collection, ``olmoearth-test-malformed``, is loaded into the session twin beside the real
ones (its own collection id: the shared catalogue's searches are untouched). Its items are clones of
the twin's Landsat items over West Oakland, with their real COGs, re-dated into chosen periods and
spoiled one way each:

* an asset whose blob does not exist (HTTP 404) in front of a good item: a bad file, skipped at once;
* ``datetime: null`` with a ``start_datetime``/``end_datetime`` range across a period boundary: placed
  by the range's midpoint, in one period only;
* every href a ``file://`` path to a real COG on this machine: refused, unless allowed explicitly;
* an L2SR item (no thermal) first, an L2SP item second: B10 comes from the L2SP item.

Expected pixels are direct bilinear warps of the COG files (``materialise_helpers``).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import logging
import time
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio

from olmoearth_data.build import GDAL_OPTIONS
from olmoearth_data.composite.first_valid import first_valid
from olmoearth_data.materialise.monthly import materialise_monthly
from olmoearth_data.missing import MissingReason
from olmoearth_data.modalities import get_modality
from olmoearth_data.results import ModalityResult
from olmoearth_data.sources import get_source
from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy
from olmoearth_data.stac.search import SearchCache
from olmoearth_twin import Catalog, Twin

from .materialise_helpers import OAKLAND, blob_path, landsat_first_valid, sample_entry

pytestmark = pytest.mark.twin

COLLECTION = "olmoearth-test-malformed"
LANDSAT = get_modality("landsat_l2")
SOURCE = dataclasses.replace(get_source("landsat_l2"), collection=COLLECTION, filter=None)
#: Periods of OAKLAND holding each case (the boundary case spans NULL_PERIOD and the next one).
P404, NULL_PERIOD, P_FILE, P_THERMAL = 1, 3, 7, 9
#: A policy that would make any retry obvious: 3 retries of ≥ 1 s.
SLOW_RETRY = RetryPolicy(attempts=4, backoff_s=1.0, timeout_s=10)


def _stamp(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _clone(item: dict[str, Any], new_id: str, *, day: dt.date, cloud: float) -> dict[str, Any]:
    out = copy.deepcopy(item)
    out["id"], out["collection"] = new_id, COLLECTION
    out["properties"]["datetime"] = _stamp(dt.datetime.combine(day, dt.time(10, 0)))
    out["properties"]["eo:cloud_cover"] = cloud
    out["links"] = []
    return out


@pytest.fixture(scope="module")
def catalogue(twin: Twin, twin_collections: Catalog) -> dict[str, dict[str, Any]]:
    """The malformed items (id → dict, the originals too), loaded into the twin."""
    items = {i["id"]: i for i in twin_collections.items()}
    ids = [
        i for p in sample_entry(twin_collections.manifest(), OAKLAND)["periods"] for i in p["landsat-c2-l2"]
    ]
    l2sp = next(items[i] for i in ids if "lwir11" in items[i]["assets"])
    l2sr = next(items[i] for i in ids if "lwir11" not in items[i]["assets"])
    periods = OAKLAND.periods
    day = {t: periods[t].start + dt.timedelta(days=10) for t in range(12)}
    missing = _clone(l2sp, "malformed-404", day=day[P404], cloud=0.0)
    missing["assets"]["red"]["href"] = missing["assets"]["red"]["href"].replace(
        "_SR_B4.TIF", "_SR_B4_gone.TIF"
    )
    good = _clone(l2sp, "malformed-good", day=day[P404], cloud=50.0)
    ranged = _clone(l2sp, "malformed-null-datetime", day=day[NULL_PERIOD], cloud=5.0)
    boundary = dt.datetime.combine(periods[NULL_PERIOD].end, dt.time(0))
    ranged["properties"].update(datetime=None, start_datetime=_stamp(boundary - dt.timedelta(days=6)),
                                end_datetime=_stamp(boundary + dt.timedelta(days=2)))  # fmt: skip
    local = _clone(l2sp, "malformed-file-hrefs", day=day[P_FILE], cloud=5.0)
    for asset in local["assets"].values():
        if asset["href"].startswith("https://") and ".blob.core.windows.net/" in asset["href"]:
            asset["href"] = blob_path(twin_collections, asset["href"]).as_uri()
    no_thermal = _clone(l2sr, "malformed-l2sr-first", day=day[P_THERMAL], cloud=1.0)
    thermal = _clone(l2sp, "malformed-l2sp-second", day=day[P_THERMAL] + dt.timedelta(days=8), cloud=60.0)
    collection = copy.deepcopy(next(c for c in twin_collections.collections() if c["id"] == "landsat-c2-l2"))
    collection["id"], collection["links"] = COLLECTION, []
    twin.load_collections([collection])
    new = [missing, good, ranged, local, no_thermal, thermal]
    twin.load_items(new)
    return {**items, **{i["id"]: i for i in new}}


@pytest.fixture(scope="module")
def config(twin: Twin) -> CatalogConfig:
    return CatalogConfig(stac_url=twin.stac_url, blob_endpoint=twin.assets_url, retry=SLOW_RETRY)


@pytest.fixture(scope="module")
def composite(
    twin: Twin, catalogue, config: CatalogConfig, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ModalityResult, list[str], int, float]:
    """The monthly composite of the malformed collection, the log lines, the 404s the blob server
    answered and the seconds it took."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, logger = Collect(level=logging.INFO), logging.getLogger("olmoearth_data")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    not_found = twin.blob_stats.by_status.get(404, 0)
    started = time.monotonic()
    try:
        with rasterio.Env(**GDAL_OPTIONS):
            cache = SearchCache(tmp_path_factory.mktemp("malformed-cache"))
            result = materialise_monthly(sample=OAKLAND, spec=LANDSAT, source=SOURCE,
                                         client=config.open_client(), stac_url=config.stac_url,
                                         sign=config.signer(), retry=SLOW_RETRY, cache=cache)  # fmt: skip
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    took = time.monotonic() - started
    return result, [r.getMessage() for r in records], twin.blob_stats.by_status.get(404, 0) - not_found, took


def _expected(twin_collections: Catalog, catalogue, ids: list[str], fallback: list[str] = ()) -> np.ndarray:
    return landsat_first_valid(twin_collections, catalogue, ids, OAKLAND.tile, fallback=list(fallback))


def _assert_equal(got: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_array_equal(got != 0, expected != 0)
    assert np.abs(got.astype(np.int32) - expected.astype(np.int32)).max() <= 1


def test_a_404_asset_is_a_bad_file_skipped_without_retries(composite, catalogue, twin_collections) -> None:
    result, messages, not_found, took = composite
    assert result.item_ids[P404] == ["malformed-good"]
    _assert_equal(result.arrays["20m"][P404], _expected(twin_collections, catalogue, ["malformed-good"]))
    skipped = [m for m in messages if "malformed-404" in m]
    assert skipped and all("bad file" in m and "retrying" not in m for m in skipped), skipped
    assert any("_SR_B4_gone.TIF" in m for m in skipped) and not any("sig=" in m for m in messages)
    assert 1 <= not_found <= 2, f"{not_found} requests for the missing blob: a 404 must not be retried"
    assert took < SLOW_RETRY.backoff_s * 3, f"{took:.1f} s: a retry of ≥ 1 s happened"


def test_a_null_datetime_item_lands_in_the_period_of_its_midpoint(
    composite, catalogue, twin_collections
) -> None:
    result, *_ = composite
    # The range [boundary − 6 d, boundary + 2 d] overlaps both periods; its midpoint is in the first.
    assert result.item_ids[NULL_PERIOD] == ["malformed-null-datetime"]
    assert result.present[NULL_PERIOD]
    expected = _expected(twin_collections, catalogue, ["malformed-null-datetime"])
    _assert_equal(result.arrays["20m"][NULL_PERIOD], expected)
    assert result.item_ids[NULL_PERIOD + 1] == [] and not result.present[NULL_PERIOD + 1]
    assert result.reason[NULL_PERIOD + 1] == MissingReason.NO_ITEMS


def test_file_hrefs_are_refused_unless_allowed(composite, catalogue, twin_collections) -> None:
    result, messages, *_ = composite
    assert not result.present[P_FILE] and result.reason[P_FILE] == MissingReason.READ_FAILED
    assert (result.arrays["20m"][P_FILE] == 0).all(), "a local file reached the composite"
    assert any("malformed-file-hrefs" in m and "refused asset href" in m for m in messages), messages
    # An explicit allow-list for a local mirror reads the same item.
    root = twin_collections.blobs_dir.as_uri() + "/"
    allowed = CatalogConfig(sign="none", local_href_prefixes=(root,), retry=SLOW_RETRY)
    item = pystac.Item.from_dict(catalogue["malformed-file-hrefs"])
    assets = [SOURCE.asset_for(b) for b in LANDSAT.bands]
    with rasterio.Env(**GDAL_OPTIONS):
        merged = first_valid([item], assets=assets, geobox=OAKLAND.tile.geobox(pixel_size_m=20.0),
                             dtype="uint16", nodata=0, resampling="bilinear", sign=allowed.signer(),
                             retry=SLOW_RETRY)  # fmt: skip
    # The same COGs as the good clone's blob hrefs.
    _assert_equal(merged.data, _expected(twin_collections, catalogue, ["malformed-good"]))


def test_thermal_comes_from_the_next_item_that_has_it(composite, catalogue, twin_collections) -> None:
    result, *_ = composite
    got = result.arrays["20m"][P_THERMAL]
    assert result.item_ids[P_THERMAL] == ["malformed-l2sr-first", "malformed-l2sp-second"]
    first_only = _expected(twin_collections, catalogue, ["malformed-l2sr-first"])
    assert (first_only[7] == 0).all() and first_only[:7].any(), "fixture: the L2SR item has no thermal"
    # SR bands: first valid from the L2SR item; B10: the L2SP item's, wherever it has a value.
    _assert_equal(got[:7], first_only[:7])
    l2sp = _expected(twin_collections, catalogue, ["malformed-l2sp-second"])
    assert l2sp[7].any(), "fixture: the L2SP item has thermal over the tile"
    _assert_equal(got[7], l2sp[7])


def test_the_instant_that_places_an_item() -> None:
    """``datetime`` when present; else the midpoint of the range; else the one bound given."""
    from olmoearth_data.item_time import item_instant

    def item(**props: object) -> dict[str, Any]:
        return {"id": "x", "properties": props}

    utc = dt.UTC
    assert item_instant(item(datetime="2021-03-01T10:00:00Z", start_datetime="2020-01-01T00:00:00Z")) == (
        dt.datetime(2021, 3, 1, 10, tzinfo=utc)
    )
    ranged = item(datetime=None, start_datetime="2021-03-01T00:00:00Z", end_datetime="2021-03-05T12:00:00Z")
    assert item_instant(ranged) == dt.datetime(2021, 3, 3, 6, tzinfo=utc)
    assert item_instant(item(start_datetime="2021-03-01T00:00:00Z")) == dt.datetime(2021, 3, 1, tzinfo=utc)
    assert item_instant(item()) is None
