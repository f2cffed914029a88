"""Overlapped reads over a slow, faulty network give the sequential path's output, bit for bit (issue #15).

The reference is the sequential path (:meth:`ReadSettings.sequential`: one read at a time, the base GDAL
options) on the session twin's plain loopback. The run under test reads the same catalogues through a
second twin whose STAC API, blob server and SAS API sit behind proxies adding latency with jitter and a
connection set-up cost, with 30 % seeded faults (429, 503, resets, slow answers) on top, with the default
:class:`ReadSettings` (16 read tasks at once, cloud-COG GDAL options). One modality per read path:
monthly with harmonisation (S2), monthly merged linear and stored in dB (S1), monthly with an optional
band (Landsat), static (WorldCover), the two tile-index maps.

The default settings read item files through the range reader (``composite.range_reads``: no size probe
per file), the sequential path through GDAL's ``/vsicurl/``: the same pixels for fewer requests.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from olmoearth_data.composite.gdal_cache import clear_remote_cache
from olmoearth_data.materialise.context import MaterialiseContext, ReadSettings
from olmoearth_data.materialise.sample import materialise_sample
from olmoearth_data.missing import SampleStatus
from olmoearth_data.modalities import get_modality
from olmoearth_data.results import SampleResult
from olmoearth_data.stac.catalog import CatalogConfig
from olmoearth_data.stac.retry import RetryPolicy
from olmoearth_data.stac.search import SearchCache
from olmoearth_twin import Catalog, FaultConfig, Twin
from olmoearth_twin.servers.net import NetProfile

from .materialise_helpers import BC, subscription_key
from .test_tile_index_twin import twin_refs

pytestmark = pytest.mark.twin

MODALITIES = (
    "sentinel2_l2a",
    "sentinel1",
    "landsat_l2",
    "worldcover",
    "wri_canopy_height_map",
    "worldcereal",
)
KEY = "network-test-subscription-key"
#: Short latencies: the CI budget; the latency curve is ``make bench-network``'s.
NET = NetProfile(latency_s=0.004, jitter_s=0.002, connect_s=0.004, seed=3)


def _run(twin: Twin, maps: Catalog, cache: Path, *, read: ReadSettings, retry: RetryPolicy) -> SampleResult:
    catalog = CatalogConfig(
        stac_url=twin.stac_url,
        blob_endpoint=twin.assets_url,
        sas_url=twin.sas_url,
        retry=retry,
        tile_indexes=twin_refs(twin, maps),
    )
    context = MaterialiseContext.open(catalog=catalog, cache=SearchCache(cache), read=read)
    with subscription_key(KEY), context as ctx, ctx.gdal_env():
        return materialise_sample(
            index=0, sample=BC, specs=[get_modality(n) for n in MODALITIES], context=ctx
        )


@pytest.fixture(scope="module")
def sequential(
    twin: Twin, twin_collections: Catalog, twin_maps: Catalog, tmp_path_factory
) -> tuple[SampleResult, int]:
    before = sum(twin.blob_stats.by_status.values())
    result = _run(
        twin,
        twin_maps,
        tmp_path_factory.mktemp("seq-cache"),
        read=ReadSettings.sequential(),
        retry=RetryPolicy(attempts=2, backoff_s=0.01),
    )
    return result, sum(twin.blob_stats.by_status.values()) - before


def test_overlapped_reads_over_a_slow_faulty_network_equal_the_sequential_path(
    sequential: tuple[SampleResult, int],
    twin_catalog: Catalog,
    twin_collections: Catalog,
    twin_maps: Catalog,
    tmp_path_factory,
) -> None:
    reference, reference_requests = sequential
    root = Path(tempfile.mkdtemp(prefix="olmoearth-twin-net-"))
    os.chmod(root, 0o755)  # as root, PostgreSQL runs unprivileged and cannot enter /tmp/pytest-of-root
    faults = FaultConfig(rate=0.3, seed=7, slow_s=0.02, retry_after_s=0)
    retry = RetryPolicy(attempts=8, backoff_s=0.02, max_backoff_s=0.5, timeout_s=10)
    try:
        with Twin(
            root=root, catalog=[twin_catalog, twin_collections, twin_maps], faults=faults, net=NET
        ) as slow:
            with slow.environment():
                got = _run(
                    slow, twin_maps, tmp_path_factory.mktemp("net-cache"), read=ReadSettings(), retry=retry
                )
            stats = slow.fault_stats
    finally:
        shutil.rmtree(root, ignore_errors=True)
    _assert_same(reference, got)
    injected = stats["blobs"].injected
    assert injected.get("reset", 0) > 0 and injected.get("503", 0) > 0, injected
    # Retries bounded: the faults cost extra requests, but not more than the faults themselves explain
    # (the range reads need ~0.6 × the sequential path's requests without faults).
    assert stats["blobs"].requests <= 2 * reference_requests, (stats["blobs"].requests, reference_requests)


def test_range_reads_need_fewer_requests_for_the_same_pixels(
    sequential: tuple[SampleResult, int], twin: Twin, twin_maps: Catalog, tmp_path_factory
) -> None:
    reference, reference_requests = sequential
    clear_remote_cache()  # the tile-index maps still read through /vsicurl/: cold, as the reference was
    before = sum(twin.blob_stats.by_status.values())
    got = _run(
        twin,
        twin_maps,
        tmp_path_factory.mktemp("range-cache"),
        read=ReadSettings(),
        retry=RetryPolicy(attempts=2, backoff_s=0.01),
    )
    requests = sum(twin.blob_stats.by_status.values()) - before
    _assert_same(reference, got)
    # Per item file: one request for its header and size instead of a size probe and a header request.
    assert requests <= 0.7 * reference_requests, (requests, reference_requests)


def _assert_same(reference: SampleResult, got: SampleResult) -> None:
    assert reference.status == got.status == SampleStatus.COMPLETE
    for name in MODALITIES:
        a, b = reference.modalities[name], got.modalities[name]
        if not get_modality(name).is_map:  # (maps may hold no data at BC: compared all the same)
            assert a.present.any(), f"{name}: the reference has no data, nothing compared"
        np.testing.assert_array_equal(a.present, b.present, err_msg=name)
        np.testing.assert_array_equal(a.reason, b.reason, err_msg=name)
        assert a.item_ids == b.item_ids, name
        for bandset in a.arrays:
            np.testing.assert_array_equal(a.arrays[bandset], b.arrays[bandset], err_msg=f"{name}/{bandset}")
