"""Build a corpus: sample table → materialised samples → sharded Zarr v3 cube, on dask.distributed.

Each task owns whole shards (``cube.writer``), so tasks never share a shard. The build is resumable:
a shard whose samples all have a final status is skipped on rerun. Each task also writes its shard's
sample-index fragment; the merged index (``index.py``) is written at the end of every build.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import rasterio
import zarr

from olmoearth_data.cube.layout import CorpusLayout, consolidate, create_corpus, open_layout
from olmoearth_data.cube.writer import write_samples
from olmoearth_data.hosts import HostLeases
from olmoearth_data.index import fragments_dir, write_index, write_shard_fragment
from olmoearth_data.materialise.osm_raster import OsmInput
from olmoearth_data.materialise.sample import materialise_sample
from olmoearth_data.missing import SampleStatus
from olmoearth_data.modalities import modality_set, registry_from_dict
from olmoearth_data.samples import Sample, read_sample_table
from olmoearth_data.sources import get_source
from olmoearth_data.stac.catalog import CatalogConfig, require_subscription_key
from olmoearth_data.stac.search import SearchCache

log = logging.getLogger(__name__)

#: GDAL settings for every reader: no directory listings on open, bounded retries and timeouts.
GDAL_OPTIONS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MAX_RETRY": "5",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    "GDAL_HTTP_TIMEOUT": "60",
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF,.xml,.jp2",
    "VSI_CACHE": "TRUE",
}


@dataclass(frozen=True)
class BuildConfig:
    """Everything a build needs; saved into the corpus (without secrets)."""

    corpus: str
    sample_table: str
    modalities: str = "default"
    samples_per_shard: int = 4
    cache_dir: str = "data/cache"
    workers: int = 2
    scheduler: str | None = None  # dask scheduler address; None → LocalCluster
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    #: ``extract_osm`` output folder for ``openstreetmap_raster`` (None: that modality is missing).
    osm_dir: str | None = None
    #: the OSM input's lon/lat extent (west, south, east, north); None: the extraction's extent.json.
    osm_bbox: tuple[float, float, float, float] | None = None
    #: cluster-wide limit on concurrent read phases toward one host (STAC API, SAS, blob host); each
    #: phase sends its requests one at a time, so this bounds the requests in flight per host
    #: (:mod:`olmoearth_data.hosts`).
    max_requests_per_host: int = 8

    def __post_init__(self) -> None:
        if self.max_requests_per_host < 1:
            raise ValueError(
                f"max_requests_per_host must be ≥ 1 (got {self.max_requests_per_host}); "
                "use e.g. --max-per-host 8"
            )
        if self.samples_per_shard < 1 or self.workers < 1:
            raise ValueError(
                f"samples_per_shard and workers must be ≥ 1 (got {self.samples_per_shard}, {self.workers})"
            )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class BuildSummary:
    corpus: str
    samples: int
    shards_total: int
    shards_built: int
    complete: int
    dropped: int


def build_shard(config: BuildConfig, shard: int) -> int:
    """Materialise and write one whole shard; returns the number of samples written.

    On a dask worker every (sample, modality) read phase holds a lease per host it contacts
    (``config.max_requests_per_host``, :class:`~olmoearth_data.hosts.HostLeases`); called directly,
    outside dask, it runs without leases.
    """
    layout, meta = open_layout(config.corpus)
    specs = registry_from_dict(meta["modalities"])
    samples = read_sample_table(config.sample_table)
    start, stop = layout.shard_range(shard)
    client = config.catalog.open_client()
    sign = config.catalog.signer()
    cache = SearchCache(config.cache_dir)
    osm = OsmInput.from_extraction(config.osm_dir, bbox=config.osm_bbox) if config.osm_dir else None
    leases = HostLeases(catalog=config.catalog, max_per_host=config.max_requests_per_host)
    with rasterio.Env(**GDAL_OPTIONS):
        results = [
            materialise_sample(index=i, sample=samples[i], specs=specs, client=client,
                               stac_url=config.catalog.stac_url, sign=sign, cache=cache, osm=osm,
                               tile_indexes=config.catalog.tile_indexes, retry=config.catalog.retry,
                               guard=leases.hold)
            for i in range(start, stop)
        ]  # fmt: skip
    # Before the shard (whose status is written last): a complete shard always has its fragment; a
    # fragment of a shard killed mid-write is rewritten when the pending shard is rebuilt.
    write_shard_fragment(corpus=config.corpus, shard=shard, results=results)
    write_samples(config.corpus, layout=layout, specs=specs, results=results)
    return stop - start


def pending_shards(path: str | Path, layout: CorpusLayout) -> list[int]:
    """Shards with at least one sample still pending (the rest are complete or dropped)."""
    status = zarr.open_group(str(path), mode="r")["status"][:]
    return [
        s
        for s in range(layout.n_shards)
        if (status[slice(*layout.shard_range(s))] == SampleStatus.PENDING).any()
    ]


def _check_same_samples(path: str, samples: Sequence[Sample]) -> None:
    stored = zarr.open_group(path, mode="r")["tile_id"][:]
    if list(stored) != [s.tile.id for s in samples]:
        raise ValueError(
            f"corpus {path} was created from a different sample table; build into a new path or remove it"
        )


def build_corpus(config: BuildConfig, *, progress: bool = False) -> BuildSummary:
    """Create (or resume) the corpus and build every pending shard on dask.distributed.

    ``progress``: a shard progress bar on stderr and the dask dashboard's link (the ``--scheduler``'s, or
    the LocalCluster's, which serves one on a free loopback port only with ``progress``).
    """
    specs = modality_set(config.modalities)
    require_subscription_key(
        collections=[get_source(s.name).collection for s in specs if get_source(s.name).requires_account],
        catalog=config.catalog,
    )
    samples = read_sample_table(config.sample_table)
    if not os.path.exists(config.corpus):
        # Index fragments of an earlier corpus at this path would lend it their item ids.
        shutil.rmtree(fragments_dir(config.corpus), ignore_errors=True)
        create_corpus(config.corpus, samples=samples, specs=specs, samples_per_shard=config.samples_per_shard,
                      attrs={"build_config": json.loads(json.dumps(config.to_dict(), default=str)),
                             "sources": {s.name: get_source(s.name).to_dict() for s in specs}})  # fmt: skip
    else:
        _check_same_samples(config.corpus, samples)
    layout, _ = open_layout(config.corpus)
    todo = pending_shards(config.corpus, layout)
    if todo:
        _run_on_dask(config, todo, progress=progress)
    consolidate(config.corpus)
    write_index(corpus=config.corpus)
    status = zarr.open_group(config.corpus, mode="r")["status"][:]
    return BuildSummary(
        corpus=config.corpus,
        samples=layout.n_samples,
        shards_total=layout.n_shards,
        shards_built=len(todo),
        complete=int(np.sum(status == SampleStatus.COMPLETE)),
        dropped=int(np.sum(status == SampleStatus.DROPPED)),
    )


def local_cluster(*, workers: int, dashboard: bool):  # -> distributed.LocalCluster
    """A LocalCluster of ``workers`` single-threaded worker processes, everything on loopback.

    ``dashboard``: serve the bokeh dashboard on a free loopback port (its URL is the client's
    ``dashboard_link``). Without it the scheduler still runs its HTTP server (``/health``), also on a
    free loopback port — never the default 8787, which a second build on the machine would find taken.
    """
    from dask.distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address="127.0.0.1:0", scheduler_kwargs={"dashboard": dashboard},
                        silence_logs=logging.WARNING)  # fmt: skip


def _run_on_dask(config: BuildConfig, shards: list[int], *, progress: bool) -> None:
    from dask.distributed import Client, as_completed
    from tqdm import tqdm

    # distributed sets its loggers to INFO on import; a build's own progress is what users want to see.
    logging.getLogger("distributed").setLevel(logging.WARNING)

    if config.scheduler:
        client = Client(config.scheduler)
        cluster = None
    else:
        cluster = local_cluster(workers=config.workers, dashboard=progress)
        client = Client(cluster)
    try:
        if progress and client.dashboard_link:
            print(f"dask dashboard: {client.dashboard_link}", file=sys.stderr, flush=True)
        futures = client.map(build_shard, [config] * len(shards), shards, pure=False)
        with tqdm(total=len(shards), desc="shards", unit="shard", disable=not progress) as bar:
            for future in as_completed(futures):
                future.result()
                bar.update(1)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
