"""A twin serving everything a sample table needs: one call from a sample list to a running twin and
the :class:`~olmoearth_data.stac.catalog.CatalogConfig` a build reads it with.

Every source of the ``default`` modality set is generated for exactly the given (tile, centre date)
pairs, cached per ``cache_dir`` (a rerun with the same samples and seed reuses the files):

* ``sentinel-2-l2a`` (:func:`~olmoearth_twin.catalog.sentinel2.generate_sentinel2`);
* S1 RTC, Landsat C2 L2, WorldCover, NASADEM, Cop-DEM, CDL
  (:func:`~olmoearth_twin.catalog.collections.generate_collections`);
* the non-PC maps, WRI canopy height and WorldCereal 2021
  (:func:`~olmoearth_twin.catalog.maps.generate_maps`), served through GeoJSON tile indexes that the
  returned config's ``tile_indexes`` points at.

Usage::

    with serve_full_twin(samples=read_sample_table(table), seed=0, cache_dir=Path("build/twin/cache"),
                         root=Path("build/twin-dataset")) as full:
        build_corpus(BuildConfig(..., catalog=full.catalog))

``make dataset CATALOG=twin``, ``make demo`` and the corpus tests use it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from olmoearth_data.samples import Sample
from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy
from olmoearth_data.stac.tile_index import TileIndexRef
from olmoearth_twin.catalog.collections import generate_collections
from olmoearth_twin.catalog.maps import generate_maps
from olmoearth_twin.catalog.sentinel2 import generate_sentinel2
from olmoearth_twin.catalog.store import Catalog
from olmoearth_twin.servers.twin import Twin, reset_pc_sdk

#: The twin's SAS stand-in accepts any subscription key, but a build refuses to start account-only
#: collections (S1 RTC) without one, as it would against Planetary Computer.
SUBSCRIPTION_KEY_ENV = "PC_SDK_SUBSCRIPTION_KEY"
TWIN_SUBSCRIPTION_KEY = "twin"


@dataclass(frozen=True)
class FullCatalogs:
    """The three generated catalogues of a full twin (each a folder under ``cache_dir``)."""

    sentinel2: Catalog
    collections: Catalog
    maps: Catalog

    def all(self) -> list[Catalog]:
        return [self.sentinel2, self.collections, self.maps]


@dataclass(frozen=True)
class FullTwin:
    """A running full twin: the server, its generated catalogues and the build's catalogue config."""

    twin: Twin
    catalogs: FullCatalogs
    catalog: CatalogConfig


def twin_samples(samples: Sequence[Sample]) -> tuple[Sample, ...]:
    """The distinct ``(tile, centre)`` rows of ``samples``, categories dropped, first occurrence kept (so
    the order — and the generators' cache key — follows the table)."""
    out: dict[Sample, None] = {}
    for s in samples:
        out.setdefault(Sample(s.tile, s.centre), None)
    if not out:
        raise ValueError("no samples: a full twin needs at least one (tile, centre date) row")
    return tuple(out)


def generate_full(
    *,
    samples: Sequence[Sample],
    seed: int,
    cache_dir: Path,
    log: Callable[[str], None] | None = None,
) -> FullCatalogs:
    """Generate (or reuse from ``cache_dir``) every catalogue the ``default`` set needs for ``samples``.

    Cold, on 2 shared cores, 16 samples in 4 places cost about a minute (S2 dominates); warm, ~0 s.
    ``log`` gets one line per catalogue.
    """
    rows = twin_samples(samples)
    cache_dir = Path(cache_dir)
    say = log or (lambda _line: None)
    say(f"sentinel-2-l2a for {len(rows)} samples")
    s2 = generate_sentinel2(samples=rows, seed=seed, cache_dir=cache_dir)
    say("S1 RTC, Landsat C2 L2, WorldCover, NASADEM, Cop-DEM, CDL")
    collections = generate_collections(samples=rows, seed=seed, cache_dir=cache_dir)
    say("canopy height and WorldCereal tiles + indexes")
    maps = generate_maps(samples=rows, seed=seed, cache_dir=cache_dir)
    return FullCatalogs(sentinel2=s2, collections=collections, maps=maps)


def tile_index_refs(*, twin: Twin, maps: Catalog) -> dict[str, TileIndexRef]:
    """The twin's tile indexes as ``CatalogConfig.tile_indexes`` entries (collection → index + base)."""
    refs = {}
    for name, entry in maps.manifest()["tile_indexes"].items():
        base = f"{twin.assets_url}/{entry['account']}/{entry['container']}/"
        refs[name] = TileIndexRef(url=twin.tile_index_url(name), base=base)
    return refs


def catalog_config(*, twin: Twin, maps: Catalog, retry: RetryPolicy) -> CatalogConfig:
    """How a build reads a running twin: its STAC API, its blob server after SAS signing, its tile
    indexes, and ``retry`` for every request."""
    return CatalogConfig(
        stac_url=twin.stac_url,
        blob_endpoint=twin.assets_url,
        retry=retry,
        tile_indexes=tile_index_refs(twin=twin, maps=maps),
    )


@contextlib.contextmanager
def _subscription_key() -> Iterator[None]:
    saved = os.environ.get(SUBSCRIPTION_KEY_ENV)
    os.environ.setdefault(SUBSCRIPTION_KEY_ENV, TWIN_SUBSCRIPTION_KEY)
    reset_pc_sdk()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(SUBSCRIPTION_KEY_ENV, None)
        reset_pc_sdk()


@contextlib.contextmanager
def serve_full_twin(
    *,
    samples: Sequence[Sample],
    seed: int,
    cache_dir: Path,
    root: Path,
    retry: RetryPolicy | None = None,
    log: Callable[[str], None] | None = None,
) -> Iterator[FullTwin]:
    """Generate (cached) and serve a twin covering every sample with every ``default``-set source.

    For the block, the twin's environment (``PC_SDK_SAS_URL``, ``OLMOEARTH_BLOB_ENDPOINT``, …) and a
    ``PC_SDK_SUBSCRIPTION_KEY`` (kept if already set) are exported, so dask workers started inside
    inherit them; both are restored on exit and the twin is stopped.

    Args:
        samples: the samples (e.g. ``read_sample_table(path)``).
        seed: generator seed (same samples and seed → the same bytes).
        cache_dir: catalogue cache folder (e.g. ``build/twin/cache``).
        root: the twin's working folder (PostgreSQL cluster, logs); as root it must be traversable by
            an unprivileged user (not pytest's 0700 tmp dirs).
        retry: the build's retry policy (default: 4 tries, 0.2 s first back-off, 30 s timeout —
            loopback needs no long waits).
        log: progress callback, one line per step.
    """
    catalogs = generate_full(samples=samples, seed=seed, cache_dir=cache_dir, log=log)
    retry = retry or RetryPolicy(attempts=4, backoff_s=0.2, timeout_s=30)
    with Twin(root=root, catalog=catalogs.all()) as twin, twin.environment(), _subscription_key():
        config = catalog_config(twin=twin, maps=catalogs.maps, retry=retry)
        yield FullTwin(twin=twin, catalogs=catalogs, catalog=config)
