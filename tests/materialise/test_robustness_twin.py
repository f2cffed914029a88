"""Materialisation under faults: a 30 % fault proxy, a server that is down, bad assets, no leaked secrets.

The clean run is the session twin's answer; the faulty run reads the same generated catalogues through
a second twin whose STAC API and blob server sit behind seeded fault proxies (429, 503, connection
resets, slow answers). Bad assets come from ``twin_bad_collections`` served by a third twin (its item
ids may equal the good catalogue's). Expectations come from the twin's manifests, never from the code
under test.
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
from materialise_helpers import BC, subscription_key
from test_tile_index_twin import twin_refs

from olmoearth_data.build import GDAL_OPTIONS
from olmoearth_data.materialise.sample import materialise_sample
from olmoearth_data.missing import SampleStatus
from olmoearth_data.modalities import get_modality
from olmoearth_data.results import SampleResult
from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy
from olmoearth_data.stac.search import SearchCache
from olmoearth_data.stac.tile_index import TileIndexRef, fetch_index
from olmoearth_twin import Catalog, FaultConfig, Twin

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
    with the log records of the run."""
    root = _twin_root()
    cache_dir = tmp_path_factory.mktemp("bad-cache")
    try:
        with Twin(root=root, catalog=[twin_bad_collections, twin_maps]) as bad, bad.environment():
            result = _materialise(
                bad,
                twin_maps,
                cache_dir,
                retry=RetryPolicy(attempts=2, backoff_s=0.01, timeout_s=10),
                names=("sentinel1", "landsat_l2"),
            )
            yield result, log_records, cache_dir
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_bad_assets_skip_items_and_the_tile_completes(bad_run, twin_bad_collections: Catalog) -> None:
    result, records, _ = bad_run
    bad_items = twin_bad_collections.manifest()["bad_asset_items"]
    assert result.status == SampleStatus.COMPLETE
    messages = [r.getMessage() for r in records]
    used = {
        i for name in ("sentinel1", "landsat_l2") for ids in result.modalities[name].item_ids for i in ids
    }
    for entry in bad_items["truncated"]:  # unreadable: skipped, logged with its item id and unsigned href
        hits = [m for m in messages if entry["item"] in m and "read failed" in m]
        assert hits, f"no failure logged for truncated item {entry['item']}"
        assert all("https://" in m and "sig=" not in m for m in hits)
    for entry in bad_items["all_nodata"]:  # read fine, nothing valid: contributes no pixel
        assert entry["item"] not in used
    s1 = result.modalities["sentinel1"]
    for bs in s1.arrays.values():
        assert not np.isinf(bs).any()
    assert s1.present.any()
    landsat = result.modalities["landsat_l2"]
    assert landsat.present.any(), "the wrong-CRS asset must not sink the whole modality"


def test_no_secret_in_logs_or_outputs(bad_run, faulty_run, caplog) -> None:
    """Neither a SAS signature nor the subscription key reaches a log record or a file the build wrote."""
    _, records, bad_cache = bad_run
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
