"""Everything a worker's materialisers share, built once per worker (or shard) and passed down.

A :class:`MaterialiseContext` holds the catalogue client, the href signer (SAS tokens), the retry
policy, the search cache, the tile indexes, the OSM input, the per-host leases, the GDAL options and
the worker's read pool. ``build.run_shard`` and ``olmoearth-data materialise`` build one; the
materialisers take it instead of a dozen keyword arguments.

Overlapped reads (issue #15). Over a real network every request waits a round trip (~30-100 ms to
Planetary Computer from outside Azure); read one at a time, a sample pays them all in series. So a
worker runs a modality's independent *read tasks* side by side on a thread pool of
:attr:`ReadSettings.max_in_flight` threads: the STAC searches of a sample's periods, the composites of
its periods (monthly); the item reads of a static or tile-index mosaic (read ahead, merged in order:
:class:`~olmoearth_data.composite.first_valid.ReadAhead`); the files of the canopy-height mosaic.
Inside a period task nothing changes: items are read in priority order one at a time and the
first-valid merge stops as early as before; items read ahead are merged in the same order, an item
read past the early stop only costs a wasted read. So the output is bit-identical to the sequential
path (:meth:`ReadSettings.sequential`; ``tests/materialise/test_network_twin.py``).
Each task sends one request at a time and holds one lease per host of its modality for its duration
(:mod:`olmoearth_data.hosts`): the cluster-wide bound on requests in flight per host stays
``max_requests_per_host``.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import pystac_client
import rasterio

from olmoearth_data.composite import range_reads
from olmoearth_data.composite.first_valid import ReadAhead
from olmoearth_data.composite.range_reads import RangeReader, opener_supported
from olmoearth_data.gdal_env import gdal_options
from olmoearth_data.materialise.osm_raster import OsmInput
from olmoearth_data.modalities import ModalitySpec
from olmoearth_data.stac.catalog import CatalogConfig
from olmoearth_data.stac.retry import RetryPolicy
from olmoearth_data.stac.search import SearchCache
from olmoearth_data.stac.tile_index import TileIndexRef

T = TypeVar("T")
#: ``lease(spec)``: a context manager holding the leases of ``spec``'s hosts (HostLeases.hold).
Lease = Callable[[ModalitySpec], contextlib.AbstractContextManager[object]]


@dataclass(frozen=True)
class ReadSettings:
    """How a worker overlaps its reads.

    Attributes:
        max_in_flight: read tasks a worker runs at once (each sends one request at a time), ≥ 1;
            1 is the sequential path. 16 (``make bench-network``, docs/network.md): at 50 ms per request
            1.13× the 0 ms wall time per sample (8: 1.87×), peak worker RSS 0.55 GB.
        cloud_gdal: use GDAL's cloud-COG options (:data:`~olmoearth_data.gdal_env.CLOUD_COG_OPTIONS`).
        range_reads: read item files through :class:`~olmoearth_data.composite.range_reads.RangeReader`
            (no size probe per file; docs/network.md) where rasterio offers its opener plugin.
    """

    max_in_flight: int = 16
    cloud_gdal: bool = True
    range_reads: bool = True

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be ≥ 1, got {self.max_in_flight}")

    @classmethod
    def sequential(cls) -> ReadSettings:
        """One read at a time with the base GDAL options: the path before overlapped reads."""
        return cls(max_in_flight=1, cloud_gdal=False, range_reads=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class MaterialiseContext:
    """What the materialisers of one worker share (see the module docstring); close it when done.

    Args:
        client: the STAC API client (None: the API could not be opened; STAC modalities then fail).
        stac_url: the STAC API root (search cache key, outage reports).
        sign: unsigned href → readable URL (:meth:`CatalogConfig.signer`).
        retry: how failed remote calls are retried (None: item reads are not retried).
        cache: per-sample search results on disk (None: search every time).
        tile_indexes: tile-index source collection → its footprint index (None: those maps NOT_BUILT).
        osm: the OSM extraction (None: ``openstreetmap_raster`` is OUTSIDE_COVERAGE).
        lease: per-host leases of one read task (None: no leases, outside a dask worker).
        read: the overlap of reads.
    """

    def __init__(
        self,
        *,
        client: pystac_client.Client | None,
        stac_url: str,
        sign: Callable[[str], str],
        retry: RetryPolicy | None,
        cache: SearchCache | None,
        tile_indexes: Mapping[str, TileIndexRef] | None = None,
        osm: OsmInput | None = None,
        lease: Lease | None = None,
        read: ReadSettings | None = None,
    ) -> None:
        self.client = client
        self.stac_url = stac_url
        self.sign = sign
        self.retry = retry
        self.cache = cache
        self.tile_indexes = tile_indexes
        self.osm = osm
        self.lease = lease
        self.read = read or ReadSettings()
        self.gdal_options = gdal_options(retry=retry, cloud=self.read.cloud_gdal)
        self.range_reader = RangeReader(retry=retry) if self.read.range_reads and opener_supported() else None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._in_task = threading.local()

    @classmethod
    def open(
        cls,
        *,
        catalog: CatalogConfig,
        cache: SearchCache | None = None,
        osm: OsmInput | None = None,
        lease: Lease | None = None,
        read: ReadSettings | None = None,
    ) -> MaterialiseContext:
        """A context for ``catalog``: opens the STAC client (raises what ``open_client`` raises, e.g. an
        outage of the API) and the signer."""
        return cls(
            client=catalog.open_client(),
            stac_url=catalog.stac_url,
            sign=catalog.signer(),
            retry=catalog.retry,
            cache=cache,
            tile_indexes=catalog.tile_indexes,
            osm=osm,
            lease=lease,
            read=read,
        )

    # -- GDAL and leases ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def gdal_env(self) -> Iterator[None]:
        """The build's GDAL options and range reader for the calling thread (rasterio keeps GDAL
        options per thread; :func:`~olmoearth_data.composite.range_reads.using` likewise)."""
        with rasterio.Env(**self.gdal_options), range_reads.using(self.range_reader):
            yield

    @contextlib.contextmanager
    def _task(self, spec: ModalitySpec) -> Iterator[None]:
        with self.lease(spec) if self.lease else contextlib.nullcontext(), self.gdal_env():
            yield

    # -- running read tasks ---------------------------------------------------------------------------
    def _executor(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self.read.max_in_flight, thread_name_prefix="olmoearth-read"
                )
            return self._pool

    def run(self, spec: ModalitySpec, tasks: Sequence[Callable[[], T]]) -> list[T]:
        """Run ``tasks`` (read tasks of ``spec``) and return their results in order.

        Up to ``read.max_in_flight`` at once, each under ``spec``'s host leases and the GDAL options;
        one at a time, in order, when ``max_in_flight`` is 1 or when called from inside a task. When a
        task raises, the tasks not started are cancelled, the running ones finish, and the exception of
        the first failed task (in order) is raised.
        """
        if getattr(self._in_task, "active", False):  # a task's own reads: in order, under its leases
            return [task() for task in tasks]
        if self.read.max_in_flight == 1 or len(tasks) <= 1:
            out = []
            for task in tasks:
                with self._task(spec):
                    out.append(task())
            return out

        def call(task: Callable[[], T]) -> T:
            self._in_task.active = True
            try:
                with self._task(spec):
                    return task()
            finally:
                self._in_task.active = False

        prepare = getattr(getattr(self.lease, "__self__", None), "prepare", None)
        if prepare is not None:  # HostLeases: make the semaphores here, in the dask task's thread
            prepare(spec)
        pool = self._executor()
        futures = [pool.submit(call, task) for task in tasks]
        done, pending = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_EXCEPTION)
        if pending and any(f.exception() is not None for f in done):
            for f in pending:
                f.cancel()
            concurrent.futures.wait(futures)
        for f in futures:
            if not f.cancelled() and f.exception() is not None:
                raise f.exception()  # type: ignore[misc]
        return [f.result() for f in futures]

    def read_ahead(self, spec: ModalitySpec) -> ReadAhead | None:
        """Item reads of a first-valid merge as read tasks of ``spec``, ``max_in_flight`` at a time
        (:class:`~olmoearth_data.composite.first_valid.ReadAhead`); None on the sequential path."""
        if self.read.max_in_flight == 1:
            return None
        return ReadAhead(run=lambda tasks: self.run(spec, tasks), width=self.read.max_in_flight)

    # -- lifetime -------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the read pool (waits for running tasks); the context must not be used afterwards."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> MaterialiseContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def legacy_context(
    *,
    client: pystac_client.Client | None,
    stac_url: str,
    sign: Callable[[str], str] | None,
    cache: SearchCache | None,
    retry: RetryPolicy | None,
    tile_indexes: Mapping[str, TileIndexRef] | None = None,
    osm: OsmInput | None = None,
    lease: Lease | None = None,
) -> MaterialiseContext:
    """A context of loose parts, for callers that pass them one by one (tests, one-off reads); default
    :class:`ReadSettings`. Use it as a context manager (it owns a read pool)."""
    return MaterialiseContext(
        client=client,
        stac_url=stac_url,
        sign=sign or (lambda href: href),
        retry=retry,
        cache=cache,
        tile_indexes=tile_indexes,
        osm=osm,
        lease=lease,
    )
