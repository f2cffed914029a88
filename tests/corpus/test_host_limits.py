"""Bounded concurrency toward each host (issue #8): builds against the twin, watched from its blob
server's in-flight high-water mark (requests being served at once)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr

from olmoearth_data.build import BuildConfig, build_corpus, build_shard
from olmoearth_data.cube.layout import create_corpus
from olmoearth_data.hosts import AZURE_BLOB_POOL, HostLeases, host_of, modality_hosts
from olmoearth_data.modalities import get_modality, modality_set
from olmoearth_data.samples import read_sample_table, write_sample_table
from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy
from olmoearth_data.stac.tile_index import TileIndexRef
from olmoearth_twin import Twin
from olmoearth_twin.catalog.samples import SMALL_SAMPLES


def _config(twin: Twin, work: Path, *, name: str, max_per_host: int) -> BuildConfig:
    catalog = CatalogConfig(
        stac_url=twin.stac_url, blob_endpoint=twin.assets_url, retry=RetryPolicy(attempts=3, backoff_s=0.01)
    )
    return BuildConfig(
        corpus=str(work / f"{name}.zarr"),
        sample_table=str(work / "samples.parquet"),
        modalities="s2",
        samples_per_shard=1,
        cache_dir=str(work / f"cache-{name}"),  # a cache per build: every build searches the API itself
        workers=2,
        catalog=catalog,
        max_requests_per_host=max_per_host,
    )


@pytest.fixture(scope="module")
def work(twin: Twin, tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("host-limits")
    write_sample_table(work / "samples.parquet", samples=list(SMALL_SAMPLES))
    return work


def _build(twin: Twin, config: BuildConfig) -> int:
    """Build and return the blob server's high-water mark of requests in flight during the build."""
    requests = sum(twin.blob_stats.by_status.values())
    twin.blob_stats.reset_in_flight()
    summary = build_corpus(config)
    assert (summary.complete, summary.shards_built) == (2, 2)
    assert sum(twin.blob_stats.by_status.values()) > requests + 100, "the build must have read blobs"
    return twin.blob_stats.max_in_flight


def _s2(path: str) -> np.ndarray:
    return zarr.open_group(path, mode="r")["sentinel2_l2a/10m/data"][:]


@pytest.fixture(scope="module")
def one_per_host(twin: Twin, work: Path) -> tuple[BuildConfig, int]:
    config = _config(twin, work, name="max1", max_per_host=1)
    return config, _build(twin, config)


@pytest.mark.twin
@pytest.mark.slow
def test_one_lease_per_host_keeps_one_blob_read_in_flight(one_per_host: tuple[BuildConfig, int]) -> None:
    """2 workers, 2 one-sample shards, 1 lease per host: the reads of the two workers never overlap."""
    _, max_in_flight = one_per_host
    assert max_in_flight == 1


@pytest.mark.twin
@pytest.mark.slow
def test_two_leases_let_two_workers_read_at_once(
    twin: Twin, work: Path, one_per_host: tuple[BuildConfig, int]
) -> None:
    """The contrast: with 2 leases the same build has reads of both workers in flight together, and the
    limit changes only the timing — the data equal the 1-lease build's."""
    config = _config(twin, work, name="max2", max_per_host=2)
    assert _build(twin, config) >= 2
    np.testing.assert_array_equal(_s2(config.corpus), _s2(one_per_host[0].corpus))


@pytest.mark.twin
@pytest.mark.slow
def test_build_shard_outside_dask_runs_without_leases(
    twin: Twin, work: Path, one_per_host: tuple[BuildConfig, int]
) -> None:
    """Called directly (no worker, no scheduler) a shard builds all the same, without leases: its read
    tasks overlap, at most ``ReadSettings.max_in_flight`` requests at once (each task sends one request at
    a time: the granularity argument of ``olmoearth_data.hosts``)."""
    config = _config(twin, work, name="direct", max_per_host=1)
    create_corpus(config.corpus, samples=read_sample_table(config.sample_table), specs=modality_set("s2"),
                  samples_per_shard=1, attrs={})  # fmt: skip
    assert not HostLeases(catalog=config.catalog, max_per_host=1).active
    twin.blob_stats.reset_in_flight()
    assert build_shard(config, 0) == 1
    assert 1 < twin.blob_stats.max_in_flight <= config.read.max_in_flight
    np.testing.assert_array_equal(_s2(config.corpus)[0], _s2(one_per_host[0].corpus)[0])


def test_hosts_of_each_kind_of_source(twin: Twin) -> None:
    """STAC modalities lease the API, token and blob hosts; tile-index maps their index hosts; OSM
    (local files) nothing. Planetary Computer's blob accounts share one pool."""
    pc = CatalogConfig()
    pc_sas = "https://planetarycomputer.microsoft.com/api/sas/v1/token"
    s2, osm = get_modality("sentinel2_l2a"), get_modality("openstreetmap_raster")
    assert modality_hosts(spec=s2, catalog=pc, sas_url=pc_sas) == (
        AZURE_BLOB_POOL,
        "planetarycomputer.microsoft.com",
    )
    assert modality_hosts(spec=osm, catalog=pc, sas_url=pc_sas) == ()
    canopy = modality_hosts(spec=get_modality("wri_canopy_height_map"), catalog=pc, sas_url=None)
    assert canopy == ("dataforgood-fb-data.s3.amazonaws.com",)

    mirror = TileIndexRef(url=f"{twin.assets_url}/idx/x/tiles.geojson", base=f"{twin.assets_url}/idx/x/")
    local = CatalogConfig(stac_url=twin.stac_url, blob_endpoint=twin.assets_url, sign="none",
                          tile_indexes={"wri-canopy-height": mirror})  # fmt: skip
    blob, stac = host_of(twin.assets_url), host_of(twin.stac_url)
    assert blob != stac and blob.startswith("127.0.0.1:")
    assert modality_hosts(spec=s2, catalog=local, sas_url=None) == tuple(sorted({blob, stac}))
    assert modality_hosts(spec=get_modality("wri_canopy_height_map"), catalog=local, sas_url=None) == (blob,)
    assert modality_hosts(spec=get_modality("worldcereal"), catalog=local, sas_url=None) == ()


def test_bad_limits_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--max-per-host"):
        BuildConfig(corpus=str(tmp_path / "c.zarr"), sample_table="s.parquet", max_requests_per_host=0)
    with pytest.raises(ValueError, match="absolute http"):
        host_of("data/local/path")
