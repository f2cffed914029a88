"""Bounded concurrency toward each remote host during a build, with dask.distributed semaphores.

Planetary Computer throttles clients that open too many requests at once (429s, dropped connections);
a cluster of hundreds of workers would do exactly that. So every remote read of a build holds a lease
of a cluster-wide :class:`distributed.Semaphore` named after the host it talks to, with
``max_leases = BuildConfig.max_requests_per_host``.

Granularity: one lease per host for one *read task* of a (sample, modality) — a period's search, a
period's composite, a static map's mosaic (:mod:`olmoearth_data.materialise.context`: a worker runs
several tasks side by side, each under its own leases). A lease per HTTP request is not feasible: GDAL
issues the requests from C, below any Python hook. It is still a bound on requests, because within a
task the requests go out one at a time (odc-stac loads with ``pool=1``, items one after the other, the
tile-index reader is sequential). A task holds the leases of *all* hosts it may contact — the STAC
API, the SAS token endpoint, the blob host, the tile-index hosts — acquired in sorted order, and never
waits for another task while holding them, so two tasks can never wait on each other. OSM
rasterisation reads local files and takes no lease.

Azure blob assets live on per-collection storage accounts (``<account>.blob.core.windows.net``) that
are known only after the search, so without a ``blob_endpoint`` all accounts share one pool named
``blob.core.windows.net``: a conservative bound (N reads over all accounts together).

Outside a dask worker (``build_shard`` called directly, a benchmark, a test) there is no scheduler to
hold semaphores and :meth:`HostLeases.hold` does nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import urlsplit

from olmoearth_data.modalities import ModalitySpec
from olmoearth_data.sources import SourceKind, get_source
from olmoearth_data.stac.catalog import CatalogConfig

#: One pool for every Azure storage account when reads go to Azure directly (see module docstring).
AZURE_BLOB_POOL = "blob.core.windows.net"
#: Default of the Planetary Computer SDK's token endpoint (``PC_SDK_SAS_URL`` overrides it).
PC_SAS_URL = "https://planetarycomputer.microsoft.com/api/sas/v1"


def host_of(url: str) -> str:
    """``host[:port]`` of an http(s) URL, lower-cased (the semaphore key); raises on a URL without one."""
    netloc = urlsplit(url).netloc.lower()
    if not netloc:
        raise ValueError(f"cannot tell the host of {url!r}: expected an absolute http(s) URL")
    return netloc.rsplit("@", 1)[-1]  # never put credentials into a semaphore name


def semaphore_name(*, host: str, max_leases: int) -> str:
    """The scheduler-wide semaphore of ``host``. The limit is part of the name because the scheduler
    refuses one name with two limits: builds sharing a scheduler and a limit share the pool."""
    return f"olmoearth-host/{host}/max{max_leases}"


def modality_hosts(*, spec: ModalitySpec, catalog: CatalogConfig, sas_url: str | None) -> tuple[str, ...]:
    """The hosts a (sample, ``spec``) read phase may contact, sorted; empty for local sources.

    ``sas_url``: the token endpoint used to sign hrefs (None: hrefs are not signed).
    """
    source = get_source(spec.name)
    hosts: set[str] = set()
    if source.kind is SourceKind.STAC:
        hosts.add(host_of(catalog.stac_url))
        if sas_url:
            hosts.add(host_of(sas_url))
        hosts.add(host_of(catalog.blob_endpoint) if catalog.blob_endpoint else AZURE_BLOB_POOL)
    elif source.kind is SourceKind.TILE_INDEX and source.collection in catalog.tile_indexes:
        ref = catalog.tile_indexes[source.collection]
        hosts.update((host_of(ref.url), host_of(ref.base)))
    return tuple(sorted(hosts))


def _pc_sas_url() -> str:
    import planetary_computer.settings

    return planetary_computer.settings.Settings.get().sas_url or PC_SAS_URL


def _in_dask_worker() -> bool:
    try:
        from distributed import get_worker
    except ImportError:  # pragma: no cover - distributed is a dependency; stay usable without it
        return False
    try:
        get_worker()
    except ValueError:
        return False
    return True


class HostLeases:
    """Per-host leases for the read phases of one build task.

    Args:
        catalog: the build's catalogue (STAC URL, signing, blob endpoint, tile indexes).
        max_per_host: leases per host across the whole cluster (≥ 1).

    Use ``with leases.hold(spec): materialise(...)``. Inside a dask worker each host's semaphore is
    created on first use and registered with the scheduler; elsewhere ``hold`` is a no-op.
    """

    def __init__(self, *, catalog: CatalogConfig, max_per_host: int) -> None:
        if max_per_host < 1:
            raise ValueError(f"max_per_host must be ≥ 1, got {max_per_host}")
        self._catalog = catalog
        self._max = max_per_host
        self.active = _in_dask_worker()
        self._sas_url = (catalog.sas_url or _pc_sas_url()) if catalog.sign == "planetary_computer" else None
        self._semaphores: dict[str, object] = {}

    def hosts(self, spec: ModalitySpec) -> tuple[str, ...]:
        """The hosts whose leases :meth:`hold` takes for ``spec``."""
        return modality_hosts(spec=spec, catalog=self._catalog, sas_url=self._sas_url)

    def _semaphore(self, host: str):  # -> distributed.Semaphore
        if host not in self._semaphores:
            from distributed import Semaphore

            self._semaphores[host] = Semaphore(
                max_leases=self._max, name=semaphore_name(host=host, max_leases=self._max)
            )
        return self._semaphores[host]

    def prepare(self, spec: ModalitySpec) -> None:
        """Create ``spec``'s semaphores now: a semaphore is made in the dask task's own thread (a thread
        of the worker's read pool has no worker to find its scheduler by), then held from any thread."""
        if self.active:
            for host in self.hosts(spec):
                self._semaphore(host)

    @contextlib.contextmanager
    def hold(self, spec: ModalitySpec) -> Iterator[tuple[str, ...]]:
        """Hold one lease of every host of ``spec`` for the block; yields the hosts held (none outside
        a dask worker). Blocks until every lease is granted."""
        if not self.active:
            yield ()
            return
        hosts = self.hosts(spec)
        with contextlib.ExitStack() as stack:
            for host in hosts:  # sorted: every phase acquires in the same order, so no deadlock
                stack.enter_context(self._semaphore(host))
            yield hosts
