"""Materialisation under faults: a 30 % fault proxy, a server that is down, bad assets, no leaked secrets.

The clean run is the session twin's answer; the faulty run reads the same generated catalogues through
a second twin whose STAC API and blob server sit behind seeded fault proxies (429, 503, connection
resets, slow answers). Bad assets come from ``twin_bad_collections`` served by a third twin (its item
ids may equal the good catalogue's): unusable files (truncated, CRS contradicting the item) must cost
their item, never a retry, and every period holding a bad asset must equal direct reads of the files
that remain. Expectations come from the twin's manifests and direct file reads, never from the code
under test (apart from the greedy coverage rule, tested on its own with S2).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio

from olmoearth_data.build import GDAL_OPTIONS
from olmoearth_data.composite.coverage import select_covering
from olmoearth_data.composite.read_errors import BadAssetError, is_transient
from olmoearth_data.materialise.sample import materialise_sample
from olmoearth_data.missing import MissingReason, SampleStatus
from olmoearth_data.modalities import get_modality
from olmoearth_data.results import SampleResult
from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy
from olmoearth_data.stac.search import SearchCache
from olmoearth_data.stac.tile_index import TileIndexRef, fetch_index
from olmoearth_twin import Catalog, FaultConfig, Twin

from .materialise_helpers import BC, blob_path, landsat_first_valid, sample_entry, subscription_key
from .test_sentinel1_twin import _expected_db
from .test_tile_index_twin import twin_refs

pytestmark = pytest.mark.twin

#: One modality per read path: monthly STAC (S1, signed + account-gated), static STAC, tile index.
MODALITIES = ("sentinel1", "worldcover", "srtm", "wri_canopy_height_map", "worldcereal")
KEY = "robustness-test-subscription-key"


def _twin_root() -> Path:
    # Not pytest's tmp dir: as root, PostgreSQL runs unprivileged and cannot enter /tmp/pytest-of-root.
    root = Path(tempfile.mkdtemp(prefix="olmoearth-twin-robust-"))
    os.chmod(root, 0o755)
    return root


def _materialise(
    twin: Twin, maps: Catalog, cache_dir: Path, *, retry: RetryPolicy, names=MODALITIES
) -> SampleResult:
    config = CatalogConfig(stac_url=twin.stac_url, blob_endpoint=twin.assets_url, retry=retry)
    with subscription_key(KEY), rasterio.Env(**GDAL_OPTIONS):
        return materialise_sample(
            index=0,
            sample=BC,
            specs=[get_modality(n) for n in names],
            client=config.open_client(),
            stac_url=config.stac_url,
            sign=config.signer(),
            cache=SearchCache(cache_dir),
            tile_indexes=twin_refs(twin, maps),
            retry=retry,
        )


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def log_records() -> Iterator[list[logging.LogRecord]]:
    """Every log record of this module's runs, from the root logger: third-party loggers (odc-stac,
    rasterio) count too, as caplog only sees a test's own call."""
    handler = _Collect()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@pytest.fixture(scope="module")
def clean(twin: Twin, twin_collections: Catalog, twin_maps: Catalog, tmp_path_factory) -> SampleResult:
    return _materialise(
        twin, twin_maps, tmp_path_factory.mktemp("clean-cache"), retry=RetryPolicy(attempts=2, backoff_s=0.01)
    )


@pytest.fixture(scope="module")
def faulty_run(
    twin: Twin, twin_collections: Catalog, twin_maps: Catalog, log_records, tmp_path_factory
) -> Iterator[tuple[SampleResult, Twin, Path]]:
    root = _twin_root()
    cache_dir = tmp_path_factory.mktemp("faulty-cache")
    faults = FaultConfig(rate=0.3, seed=11, slow_s=0.2, retry_after_s=0)
    retry = RetryPolicy(attempts=8, backoff_s=0.02, max_backoff_s=0.5, timeout_s=10)
    try:
        with Twin(root=root, catalog=[twin_collections, twin_maps], faults=faults) as bad, bad.environment():
            yield _materialise(bad, twin_maps, cache_dir, retry=retry), bad, cache_dir
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_thirty_percent_faults_give_the_clean_output(clean: SampleResult, faulty_run) -> None:
    faulty, bad, _ = faulty_run
    injected = bad.fault_stats["blobs"].injected
    assert sum(injected.get(k, 0) for k in ("429", "503", "reset")) > 0, "no fault injected"
    assert injected.get("reset", 0) > 0, "no dropped connection: the retries GDAL leaves to us went untested"
    assert faulty.status == clean.status == SampleStatus.COMPLETE
    for name in MODALITIES:
        a, b = clean.modalities[name], faulty.modalities[name]
        np.testing.assert_array_equal(a.present, b.present, err_msg=name)
        np.testing.assert_array_equal(a.reason, b.reason, err_msg=name)
        assert a.item_ids == b.item_ids, name
        for bs in a.arrays:
            np.testing.assert_array_equal(a.arrays[bs], b.arrays[bs], err_msg=f"{name}/{bs}")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on exit: nothing listens there


def test_server_down_fails_fast_with_a_clear_error() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    retry = RetryPolicy(attempts=3, backoff_s=0.05, timeout_s=2)
    started = time.monotonic()
    with pytest.raises(Exception, match=r"127\.0\.0\.1") as stac_error:
        CatalogConfig(stac_url=f"{url}/", sign="none", retry=retry).open_client()
    ref = TileIndexRef(url=f"{url}/forests/tiles.geojson", base=f"{url}/forests/")
    with pytest.raises(Exception, match=r"127\.0\.0\.1"):
        fetch_index(ref=ref, retry=retry)
    assert time.monotonic() - started < 20, "a down server must fail in seconds, not minutes"
    assert "Connection refused" in str(stac_error.value) or "Max retries" in str(stac_error.value)


@pytest.fixture(scope="module")
def bad_run(twin_bad_collections: Catalog, twin_maps: Catalog, log_records, tmp_path_factory):
    """``sentinel1`` + ``landsat_l2`` of the bad-asset tile, read from a twin serving the spoiled files,
    with the log records of the run (its own only: the faulty run retries items that may have the same
    ids, and which of them meet a fault depends on the order its concurrent reads reach the proxy)."""
    root = _twin_root()
    cache_dir = tmp_path_factory.mktemp("bad-cache")
    first = len(log_records)
    try:
        with Twin(root=root, catalog=[twin_bad_collections, twin_maps]) as bad, bad.environment():
            result = _materialise(
                bad,
                twin_maps,
                cache_dir,
                retry=RetryPolicy(attempts=2, backoff_s=0.01, timeout_s=10),
                names=("sentinel1", "landsat_l2"),
            )
            yield result, log_records[first:], cache_dir
    finally:
        shutil.rmtree(root, ignore_errors=True)


#: Bad-asset kinds whose file cannot be used (the item is skipped) and those that read fine (the pixels
#: decide: nodata and NaN never win a pixel).
UNUSABLE, READABLE = ("truncated", "wrong_crs"), ("all_nodata", "nan")
MODALITY_OF = {"sentinel-1-rtc": "sentinel1", "landsat-c2-l2": "landsat_l2"}


def test_bad_assets_skip_items_and_the_tile_completes(bad_run, twin_bad_collections: Catalog) -> None:
    result, records, _ = bad_run
    bad_items = twin_bad_collections.manifest()["bad_asset_items"]
    items = {i["id"]: i for i in twin_bad_collections.items()}
    assert result.status == SampleStatus.COMPLETE
    messages = [r.getMessage() for r in records]
    for kind in UNUSABLE:  # skipped at once, logged with the item id and the spoiled asset's unsigned href
        for entry in bad_items[kind]:
            hits = [m for m in messages if entry["item"] in m and "read failed" in m]
            assert hits, f"no failure logged for {kind} item {entry['item']}"
            spoiled = [items[entry["item"]]["assets"][a]["href"] for a in entry["assets"]]
            assert all(any(h in m for h in spoiled) and "sig=" not in m for m in hits), hits
            assert not any(entry["item"] in m and "retrying" in m for m in messages), "a bad file was retried"
    used = {i for name in MODALITY_OF.values() for ids in result.modalities[name].item_ids for i in ids}
    for kind in (*UNUSABLE, "all_nodata"):
        for entry in bad_items[kind]:
            assert entry["item"] not in used, f"{kind} item {entry['item']} contributed pixels"
    for bs in result.modalities["sentinel1"].arrays.values():
        assert not np.isinf(bs).any()
    assert result.modalities["sentinel1"].present.any()
    assert result.modalities["landsat_l2"].present.all(), "the wrong-CRS item must not cost a month"


def test_bad_asset_periods_equal_the_catalogue_without_the_unusable_files(
    bad_run, twin_bad_collections: Catalog
) -> None:
    """Each period holding a bad asset equals direct reads of the items a clean catalogue without the
    unusable files (truncated, wrong CRS) would composite: greedy coverage over what is left, first
    valid in search order. So the wrong-CRS file's pixels (EPSG:4326 labels on UTM numbers) land nowhere,
    and the next Landsat scene fills the month it would have taken."""
    result, _, _ = bad_run
    manifest = twin_bad_collections.manifest()
    items = {i["id"]: i for i in twin_bad_collections.items()}
    unusable = {e["item"] for kind in UNUSABLE for e in manifest["bad_asset_items"][kind]}
    periods = sample_entry(manifest, BC)["periods"]
    for kind, entries in manifest["bad_asset_items"].items():
        for entry in entries:
            collection, name = entry["collection"], MODALITY_OF[entry["collection"]]
            t = next(t for t, p in enumerate(periods) if entry["item"] in p[collection])
            left = [items[i] for i in periods[t][collection] if i not in unusable]
            ids = [d["id"] for d in select_covering(left, tile=BC.tile)]
            got = result.modalities[name]
            rest = [d["id"] for d in left if d["id"] not in ids]  # read for Landsat's thermal band only
            if name == "sentinel1":
                rest = []
                expected, data = _expected_db(twin_bad_collections, items, ids, 0), got.arrays["10m"][t]
                np.testing.assert_array_equal(np.isnan(data), np.isnan(expected), err_msg=kind)
                np.testing.assert_allclose(data, expected, rtol=0, atol=1e-4, err_msg=kind)
                has_data = not np.isnan(expected).all()
            else:
                expected = landsat_first_valid(twin_bad_collections, items, ids, BC.tile, fallback=rest)
                data = got.arrays["20m"][t]
                np.testing.assert_array_equal((data != 0).any(axis=0), (expected != 0).any(axis=0), kind)
                assert np.abs(data.astype(np.int32) - expected).max() <= 1, kind
                has_data = bool(expected.any())
            assert got.present[t] == has_data, (kind, t)
            assert got.item_ids[t] == [i for i in (*ids, *rest) if i in got.item_ids[t]], (kind, t)
            if kind in UNUSABLE and not ids:
                assert got.reason[t] == MissingReason.READ_FAILED, (kind, t)
            if kind == "wrong_crs":
                assert ids and has_data, "fixture changed: no other Landsat scene in the wrong-CRS month"


def test_network_failures_are_retried_and_bad_files_are_not(twin_bad_collections: Catalog) -> None:
    """The classification behind the retries, on real GDAL errors: a refused connection is the
    network's (retried), a truncated TIFF and a CRS contradicting its item are the file's (not)."""
    (entry,) = twin_bad_collections.manifest()["bad_asset_items"]["truncated"]
    item = next(i for i in twin_bad_collections.items() if i["id"] == entry["item"])
    truncated = blob_path(twin_bad_collections, item["assets"][entry["assets"][0]]["href"])
    failures = {}
    with rasterio.Env(GDAL_HTTP_MAX_RETRY="0", GDAL_HTTP_TIMEOUT="2"):
        for kind, url in (("refused", f"http://127.0.0.1:{_closed_port()}/x.tif"), ("truncated", truncated)):
            with pytest.raises(rasterio.errors.RasterioError) as failed, rasterio.open(url) as ds:
                ds.read()
            failures[kind] = failed.value
    assert is_transient(failures["refused"])
    assert not is_transient(failures["truncated"])
    assert not is_transient(BadAssetError("asset 'red' is in EPSG:4326 but the item declares EPSG:32610"))


def test_no_secret_in_logs_or_outputs(bad_run, faulty_run, log_records, caplog) -> None:
    """Neither a SAS signature nor the subscription key reaches a log record or a file the build wrote."""
    _, _, bad_cache = bad_run
    records = log_records  # every run of the module
    _, _, faulty_cache = faulty_run
    leaks = sorted({r.name for r in records if "sig=" in r.getMessage() or KEY in r.getMessage()})
    assert not leaks, f"loggers that printed a secret: {leaks}"
    texts = [r.getMessage() for r in records] + [caplog.text]
    assert any("read failed" in t for t in texts), "the runs logged no failure: nothing was checked"
    for cache in (bad_cache, faulty_cache):
        texts += [p.read_text(errors="replace") for p in Path(cache).rglob("*") if p.is_file()]
    assert len(texts) > 2
    for text in texts:
        assert "sig=" not in text
        assert KEY not in text
