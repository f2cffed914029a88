"""Build a corpus: sample table → materialised samples → sharded Zarr v3 cube, on dask.distributed.

Each task owns whole shards (``cube.writer``), so tasks never share a shard. The build is resumable:
a shard whose samples all have a final status is skipped on rerun. Each task also writes its shard's
sample-index fragment; the merged index (``index.py``) is written at the end of every build.

A pending shard rebuilds only what its pending samples lack (:func:`~olmoearth_data.cube.skeleton.
modalities_to_build`): a sample an outage stopped keeps the modalities finished before it. A service
that fails past the retries leaves samples pending, never dropped (:mod:`olmoearth_data.outages`); the
summary counts them per host and failure and ``olmoearth-data build`` then exits non-zero; a rerun
retries them. A rerun asking for modalities the corpus lacks adds and builds them
(:func:`~olmoearth_data.cube.skeleton.add_modalities`); a narrower one resumes the corpus's whole set.
The configuration saved in the corpus has no credentials (:mod:`olmoearth_data.redact`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import zarr

from olmoearth_data.composite.gdal_cache import clear_remote_cache
from olmoearth_data.cube.layout import CorpusLayout, consolidate, create_corpus, open_layout
from olmoearth_data.cube.skeleton import (
    add_modalities,
    interrupted_creation,
    modalities_to_build,
    skeleton_problems,
)
from olmoearth_data.cube.writer import write_samples
from olmoearth_data.gdal_env import BASE_OPTIONS
from olmoearth_data.hosts import HostLeases
from olmoearth_data.index import fragments_dir, write_index, write_shard_fragment
from olmoearth_data.materialise.context import MaterialiseContext, ReadSettings
from olmoearth_data.materialise.osm_raster import OsmInput
from olmoearth_data.materialise.sample import materialise_sample, stac_outage
from olmoearth_data.missing import SampleStatus
from olmoearth_data.modalities import ModalitySpec, modality_set, registry_from_dict
from olmoearth_data.outages import PENDING_PREFIX, Outage, summarise
from olmoearth_data.redact import redact_tree
from olmoearth_data.results import SampleResult
from olmoearth_data.samples import Sample, read_sample_table
from olmoearth_data.sources import get_source
from olmoearth_data.stac.catalog import CatalogConfig, require_subscription_key
from olmoearth_data.stac.search import SearchCache

log = logging.getLogger(__name__)

#: GDAL settings of every reader (kept under this name for callers; :mod:`olmoearth_data.gdal_env`).
GDAL_OPTIONS = BASE_OPTIONS


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
    #: cluster-wide limit on concurrent read tasks toward one host (STAC API, SAS, blob host); each
    #: task sends its requests one at a time, so this bounds the requests in flight per host
    #: (:mod:`olmoearth_data.hosts`, :mod:`olmoearth_data.materialise.context`).
    max_requests_per_host: int = 8
    #: how each worker overlaps its reads (:class:`~olmoearth_data.materialise.context.ReadSettings`).
    read: ReadSettings = field(default_factory=ReadSettings)

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
        """The configuration as saved in the corpus: every URL without userinfo and query string
        (a ``user:password@`` STAC URL, a SAS-signed ``--tile-index``), see :mod:`olmoearth_data.redact`."""
        return redact_tree(json.loads(json.dumps(asdict(self), default=str)))


@dataclass(frozen=True)
class BuildSummary:
    """What a build did. ``pending``: samples left for a rerun (an outage stopped them); ``outages``:
    per host and failure, how many samples it left pending (:func:`~olmoearth_data.outages.summarise`)."""

    corpus: str
    samples: int
    shards_total: int
    shards_built: int
    complete: int
    dropped: int
    pending: int = 0
    outages: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True)
class ShardReport:
    """One build task's outcome: the samples of the shard and those an outage left pending."""

    shard: int
    samples: int
    pending: tuple[tuple[int, Outage], ...] = ()


def build_shard(config: BuildConfig, shard: int) -> int:
    """Materialise and write one whole shard; returns the number of samples written.

    On a dask worker every (sample, modality) read phase holds a lease per host it contacts
    (``config.max_requests_per_host``, :class:`~olmoearth_data.hosts.HostLeases`); called directly,
    outside dask, it runs without leases. See :func:`run_shard` for what is rebuilt.
    """
    return run_shard(config, shard).samples


def run_shard(config: BuildConfig, shard: int) -> ShardReport:
    """Build one shard and report the samples left pending.

    Only the modalities some pending sample of the shard lacks are materialised (for every sample of
    the shard: writes cover whole shards); the others stay as stored, and a sample's status is decided
    on both. The first outage stops the shard: its remaining samples stay pending untried (the shard is
    rebuilt on the next run anyway).
    """
    layout, meta = open_layout(config.corpus)
    specs = registry_from_dict(meta["modalities"])
    start, stop = layout.shard_range(shard)
    group = zarr.open_group(config.corpus, mode="r")
    todo = modalities_to_build(group, specs=specs, start=start, stop=stop)
    kept_observed = _kept_observations(
        group, specs=[s for s in specs if s not in todo], start=start, stop=stop
    )
    samples = read_sample_table(config.sample_table)
    clear_remote_cache()  # "missing file" verdicts from an earlier task's outage must not linger
    results: list[SampleResult] = []
    outage: Outage | None = None
    try:
        client = config.catalog.open_client()
    except Exception as exc:
        found = stac_outage(exc, stac_url=config.catalog.stac_url)
        if found is None:
            raise
        client, outage = None, found.outage
    osm = OsmInput.from_extraction(config.osm_dir, bbox=config.osm_bbox) if config.osm_dir else None
    leases = HostLeases(catalog=config.catalog, max_per_host=config.max_requests_per_host)
    context = MaterialiseContext(
        client=client,
        stac_url=config.catalog.stac_url,
        sign=config.catalog.signer(),
        retry=config.catalog.retry,
        cache=SearchCache(config.cache_dir),
        tile_indexes=config.catalog.tile_indexes,
        osm=osm,
        lease=leases.hold if leases.active else None,
        read=config.read,
    )
    with context, context.gdal_env():
        for i in range(start, stop):
            if outage is not None:
                why = f"{PENDING_PREFIX}not tried after {outage.describe()}"
                results.append(SampleResult(i, SampleStatus.PENDING, why, {}, outage=outage))
                continue
            result = materialise_sample(index=i, sample=samples[i], specs=todo, context=context)
            if result.outage is not None:
                outage = result.outage
            elif result.status == SampleStatus.DROPPED and kept_observed[i - start]:
                result = replace(result, status=SampleStatus.COMPLETE, status_reason="")
            results.append(result)
    # Before the shard (whose status is written last): a complete shard always has its fragment; a
    # fragment of a shard killed mid-write is rewritten when the pending shard is rebuilt.
    names = [s.name for s in todo]
    write_shard_fragment(corpus=config.corpus, shard=shard, results=results, modalities=names)
    write_samples(config.corpus, layout=layout, specs=todo, results=results)
    pending = tuple((r.index, r.outage) for r in results if r.outage is not None)
    return ShardReport(shard=shard, samples=stop - start, pending=pending)


def _kept_observations(
    group: zarr.Group, *, specs: Sequence[ModalitySpec], start: int, stop: int
) -> np.ndarray:
    """Per sample of ``[start, stop)``: whether a stored (not rebuilt) observation modality has data."""
    observed = np.zeros(stop - start, dtype=bool)
    for spec in specs:
        if not spec.is_map:
            present = np.asarray(group[f"{spec.name}/present"][start:stop]).reshape(stop - start, -1)
            observed |= present.any(axis=1)
    return observed


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


def _require_keys(specs: Sequence[ModalitySpec], catalog: CatalogConfig) -> None:
    require_subscription_key(
        collections=[get_source(s.name).collection for s in specs if get_source(s.name).requires_account],
        catalog=catalog,
    )


def _prepare_corpus(config: BuildConfig, samples: Sequence[Sample]) -> tuple[ModalitySpec, ...]:
    """Create the corpus, or check and (when asked for more modalities) widen the existing one;
    returns the modalities the corpus holds now."""
    requested = modality_set(config.modalities)
    path = config.corpus
    if os.path.exists(path):
        problems = skeleton_problems(path)
        if problems and interrupted_creation(path):
            log.warning("corpus %s: incomplete skeleton (%s), nothing built in it: creating it anew", path,
                        problems[0])  # fmt: skip
            shutil.rmtree(path)
        elif problems:
            raise ValueError(
                f"{path} exists but is not a whole corpus ({problems[0]}); build into a new path or remove it"
            )
    if not os.path.exists(path):
        _require_keys(requested, config.catalog)
        # Index fragments of an earlier corpus at this path would lend it their item ids.
        shutil.rmtree(fragments_dir(path), ignore_errors=True)
        sources = {s.name: get_source(s.name).to_dict() for s in requested}
        create_corpus(path, samples=samples, specs=requested, samples_per_shard=config.samples_per_shard,
                      attrs={"build_config": config.to_dict(), "sources": sources})  # fmt: skip
        return requested
    _check_same_samples(path, samples)
    layout, meta = open_layout(path)
    stored = registry_from_dict(meta["modalities"])
    missing = [s for s in requested if s.name not in {x.name for x in stored}]
    union = (*stored, *missing)
    _require_keys(union, config.catalog)
    if missing:
        print(f"corpus {path}: adding modalities {', '.join(s.name for s in missing)}", file=sys.stderr)
        add_modalities(path, specs=missing, layout=layout,
                       attrs={"sources": {s.name: get_source(s.name).to_dict() for s in missing},
                              "build_config": {"modalities": ",".join(s.name for s in union)}})  # fmt: skip
    elif len(requested) < len(stored):
        log.info("corpus %s holds %s; building all of them", path, ", ".join(s.name for s in stored))
    return union


def build_corpus(config: BuildConfig, *, progress: bool = False) -> BuildSummary:
    """Create (or resume, or widen) the corpus and build every pending shard on dask.distributed.

    ``progress``: a shard progress bar on stderr and the dask dashboard's link (the ``--scheduler``'s, or
    the LocalCluster's, which serves one on a free loopback port only with ``progress``). Samples an
    outage left pending are counted in ``pending`` and ``outages`` (the CLI then exits non-zero).
    """
    samples = read_sample_table(config.sample_table)
    _prepare_corpus(config, samples)
    layout, _ = open_layout(config.corpus)
    todo = pending_shards(config.corpus, layout)
    reports = _run_on_dask(config, todo, progress=progress) if todo else []
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
        pending=int(np.sum(status == SampleStatus.PENDING)),
        outages=summarise(p for r in reports for p in r.pending),
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


def _run_on_dask(config: BuildConfig, shards: list[int], *, progress: bool) -> list[ShardReport]:
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
        futures = client.map(run_shard, [config] * len(shards), shards, pure=False)
        reports = []
        with tqdm(total=len(shards), desc="shards", unit="shard", disable=not progress) as bar:
            for future in as_completed(futures):
                reports.append(future.result())
                bar.update(1)
        return sorted(reports, key=lambda r: r.shard)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
