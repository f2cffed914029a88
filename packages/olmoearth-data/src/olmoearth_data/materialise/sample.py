"""Materialise every modality of one sample and decide its status.

Dispatch by source: monthly STAC → :mod:`.monthly`; static STAC → :mod:`.static`; OSM →
:mod:`.osm_raster`; tile-index maps (canopy height, WorldCereal) → :mod:`.tile_index`. A caller that
passes no ``tile_indexes`` gets the tile-index modalities recorded absent with ``NOT_BUILT``
(docs/corpus-schema.md).

Only data decides a drop: a sample is ``DROPPED`` when every observation modality was materialised and
none has data (no item covers the periods, or the items' files are bad). A service that fails past the
retries — SAS endpoint, blob host, STAC API, tile-index host (:mod:`olmoearth_data.outages`) — stops
the sample instead: it is returned ``PENDING`` with the outage and the modalities finished before it,
and the build retries it on the next run.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pystac_client

from olmoearth_data.cube.layout import nodata_fill
from olmoearth_data.materialise.context import MaterialiseContext, legacy_context
from olmoearth_data.materialise.monthly import materialise_monthly
from olmoearth_data.materialise.osm_raster import OsmInput, materialise_osm_raster
from olmoearth_data.materialise.static import materialise_static
from olmoearth_data.materialise.tile_index import materialise_tile_index
from olmoearth_data.missing import MissingReason, SampleStatus
from olmoearth_data.modalities import ModalitySpec
from olmoearth_data.outages import (
    PENDING_PREFIX,
    SourceUnavailableError,
    describe_failure,
    find_outage,
    host_of_url,
    is_service_failure,
)
from olmoearth_data.results import ModalityResult, SampleResult
from olmoearth_data.samples import Sample
from olmoearth_data.sources import SourceKind, get_source
from olmoearth_data.stac.retry import RetryPolicy
from olmoearth_data.stac.search import SearchCache
from olmoearth_data.stac.tile_index import TileIndexRef

log = logging.getLogger(__name__)


def not_built(spec: ModalitySpec) -> ModalityResult:
    """An all-nodata result with reason ``NOT_BUILT`` for a modality this version cannot materialise."""
    t = spec.num_timesteps
    arrays = {
        bs.name: np.full(
            (t, len(bs.bands), bs.pixels_per_tile, bs.pixels_per_tile), nodata_fill(spec), spec.dtype
        )
        for bs in spec.bandsets
    }
    reason = np.full(t, int(MissingReason.NOT_BUILT), dtype=np.uint8)
    return ModalityResult(
        arrays=arrays, present=np.zeros(t, bool), reason=reason, item_ids=[[] for _ in range(t)]
    )


def materialise_sample(
    *,
    index: int,
    sample: Sample,
    specs: Sequence[ModalitySpec],
    context: MaterialiseContext | None = None,
    client: pystac_client.Client | None = None,
    stac_url: str = "",
    sign: Callable[[str], str] | None = None,
    cache: SearchCache | None = None,
    osm: OsmInput | None = None,
    tile_indexes: Mapping[str, TileIndexRef] | None = None,
    retry: RetryPolicy | None = None,
    guard: Callable[[ModalitySpec], contextlib.AbstractContextManager[object]] | None = None,
) -> SampleResult:
    """All modalities of ``sample`` (corpus row ``index``); dropped when no observation has data.

    ``context``: the worker's :class:`~olmoearth_data.materialise.context.MaterialiseContext` — the STAC
    client, signer, search cache, retry policy, OSM input (None: ``openstreetmap_raster`` is missing with
    ``OUTSIDE_COVERAGE``), tile indexes (None or a source missing from them: that modality is
    ``NOT_BUILT``; their reads use the default :class:`RetryPolicy` when the context has none), per-host
    leases and read pool. Without one, a context is made of the loose keywords for this call (``guard``:
    the per-host leases of each read task).
    """
    if context is None:
        with legacy_context(client=client, stac_url=stac_url, sign=sign, cache=cache, retry=retry,
                            tile_indexes=tile_indexes, osm=osm, lease=guard) as ctx:  # fmt: skip
            return materialise_sample(index=index, sample=sample, specs=specs, context=ctx)
    results: dict[str, ModalityResult] = {}
    for spec in specs:
        try:
            results[spec.name] = _materialise_one(sample=sample, spec=spec, context=context)
        except Exception as exc:
            outage = find_outage(exc) or stac_outage(exc, stac_url=context.stac_url)
            if outage is None:
                raise
            log.warning("sample %d (%s) left pending: %s: %s", index, sample.tile.id, spec.name, outage)
            return SampleResult(
                index, SampleStatus.PENDING, f"{PENDING_PREFIX}{outage}", results, outage=outage.outage
            )
    observed = any(results[s.name].any_present for s in specs if not s.is_map)
    if observed:
        return SampleResult(index, SampleStatus.COMPLETE, "", results)
    return SampleResult(
        index, SampleStatus.DROPPED, "no observation (S2/S1/Landsat) data in any period", results
    )


def stac_outage(exc: BaseException, *, stac_url: str) -> SourceUnavailableError | None:
    """A search that failed on the STAC API's side past the retries (pystac-client, requests)."""
    import requests
    from pystac_client.exceptions import APIError

    if isinstance(exc, APIError | requests.RequestException) and is_service_failure(exc):
        return SourceUnavailableError(
            host=host_of_url(stac_url), role="STAC API", failure=describe_failure(exc)
        )
    return None


def _materialise_one(*, sample: Sample, spec: ModalitySpec, context: MaterialiseContext) -> ModalityResult:
    source = get_source(spec.name)
    if source.kind is SourceKind.STAC:
        materialise = materialise_monthly if spec.is_multitemporal else materialise_static
        return materialise(sample=sample, spec=spec, source=source, context=context)
    if source.kind is SourceKind.OSM:  # local files: no lease, no read pool
        return materialise_osm_raster(tile=sample.tile, spec=spec, osm=context.osm)
    indexes = context.tile_indexes
    if source.kind is SourceKind.TILE_INDEX and indexes and source.collection in indexes:
        return materialise_tile_index(
            sample=sample,
            spec=spec,
            source=source,
            ref=indexes[source.collection],
            retry=context.retry or RetryPolicy(),
            run=lambda tasks: context.run(spec, tasks),
            read_ahead=context.read_ahead(spec),
        )
    log.debug("%s: %s sources are not materialised yet; recorded NOT_BUILT", spec.name, source.kind.value)
    return not_built(spec)
