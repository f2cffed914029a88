"""Pytest fixtures: one Planetary Computer twin per test session over the small (2-tile) catalogue.

Use from any test folder by registering the plugin once in the top-level ``tests/conftest.py``::

    pytest_plugins = ["olmoearth_twin.testing"]

(importing the fixtures into a folder's conftest works too, but each folder then starts its own twin).
While the ``twin`` fixture is alive, ``PC_SDK_SAS_URL``, ``OLMOEARTH_BLOB_ENDPOINT``,
``OLMOEARTH_STAC_URL`` and ``GDAL_DISABLE_READDIR_ON_OPEN`` point at it (see :meth:`Twin.environment`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from olmoearth_twin.catalog.collections import BAD_ASSETS, generate_collections
from olmoearth_twin.catalog.maps import generate_maps
from olmoearth_twin.catalog.naip import generate_naip
from olmoearth_twin.catalog.samples import DEFAULT_SAMPLES, SMALL_SAMPLES
from olmoearth_twin.catalog.sentinel2 import generate_sentinel2
from olmoearth_twin.catalog.store import Catalog
from olmoearth_twin.servers.twin import Twin

#: Seed of the test catalogue.
TEST_SEED = 0
#: Samples of the other collections' test catalogue: the S2 pair plus West Oakland (CONUS, for CDL).
COLLECTIONS_TEST_SAMPLES = (*SMALL_SAMPLES, DEFAULT_SAMPLES[8])


@pytest.fixture(scope="session")
def twin_catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The small catalogue (:data:`SMALL_SAMPLES`, seed 0), generated once per session (~5 s)."""
    return generate_sentinel2(
        samples=SMALL_SAMPLES, seed=TEST_SEED, cache_dir=tmp_path_factory.mktemp("twin-cache")
    )


@pytest.fixture(scope="session")
def twin(twin_catalog: Catalog) -> Iterator[Twin]:
    """A running twin serving :func:`twin_catalog`, with its environment exported for the session."""
    # Not pytest's tmp dir: as root, PostgreSQL runs as an unprivileged user, which cannot enter the
    # 0700 /tmp/pytest-of-root.
    root = Path(tempfile.mkdtemp(prefix="olmoearth-twin-test-"))
    os.chmod(root, 0o755)
    try:
        with Twin(root=root, catalog=twin_catalog) as running, running.environment():
            yield running
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def twin_collections(twin: Twin, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The non-S2 collections (S1 RTC, Landsat, WorldCover, NASADEM, Cop-DEM, CDL) for
    :data:`COLLECTIONS_TEST_SAMPLES`, generated once per session (~6 s) and loaded into the session
    ``twin`` (only by tests that ask for it, so S2-only sessions stay fast)."""
    catalog = generate_collections(
        samples=COLLECTIONS_TEST_SAMPLES,
        seed=TEST_SEED,
        cache_dir=tmp_path_factory.mktemp("twin-collections"),
    )
    twin.load_catalog(catalog)
    return catalog


#: Sample of the bad-asset catalogue: the first S2 test tile alone (small and quick).
BAD_ASSETS_TEST_SAMPLES = SMALL_SAMPLES[:1]


@pytest.fixture(scope="session")
def twin_bad_collections(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The non-S2 collections for :data:`BAD_ASSETS_TEST_SAMPLES` with every kind of bad asset
    (:data:`~olmoearth_twin.catalog.collections.BAD_ASSETS`), generated once per session (~3 s) and
    **not** loaded: its item ids can equal :func:`twin_collections`' ids, so loading it into the
    session twin would replace good items. Serve it from its own ``Twin(root=..., catalog=...)``;
    ``manifest()["bad_asset_items"]`` says which item/assets are spoiled."""
    return generate_collections(
        samples=BAD_ASSETS_TEST_SAMPLES,
        seed=TEST_SEED,
        cache_dir=tmp_path_factory.mktemp("twin-bad-collections"),
        bad_assets=BAD_ASSETS,
    )


#: Samples of the NAIP test catalogue: West Oakland, the CONUS sample.
NAIP_TEST_SAMPLES = (DEFAULT_SAMPLES[8],)


@pytest.fixture(scope="session")
def twin_naip(twin: Twin, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The generated ``naip`` collection over :data:`NAIP_TEST_SAMPLES` (~3 s), loaded into the session
    ``twin``. Footprints use a 400 m buffer (PC: 300 m) so that one quarter quad per year contains the
    West Oakland tile (see :mod:`olmoearth_twin.catalog.naip`)."""
    catalog = generate_naip(
        samples=NAIP_TEST_SAMPLES,
        seed=TEST_SEED,
        cache_dir=tmp_path_factory.mktemp("twin-naip"),
        buffer_m=400.0,
    )
    twin.load_catalog(catalog)
    return catalog


@pytest.fixture(scope="session")
def twin_maps(twin: Twin, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The non-PC maps (WRI canopy height tiles, WorldCereal zones) for :data:`COLLECTIONS_TEST_SAMPLES`
    (~2 s), served by the session ``twin``; ``twin.tile_index_url(name)`` gives their indexes."""
    catalog = generate_maps(
        samples=COLLECTIONS_TEST_SAMPLES, seed=TEST_SEED, cache_dir=tmp_path_factory.mktemp("twin-maps")
    )
    twin.load_catalog(catalog)
    return catalog


#: Samples of the second Sentinel-2 test catalogue: West Oakland, so that one CONUS tile has every
#: modality of the default set (the S2 pair above is in British Columbia, outside CDL's coverage).
OAKLAND_S2_TEST_SAMPLES = (DEFAULT_SAMPLES[8],)


@pytest.fixture(scope="session")
def twin_oakland_s2(twin: Twin, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """``sentinel-2-l2a`` over :data:`OAKLAND_S2_TEST_SAMPLES` (seed 0, 26 items of granule 10SEG,
    ~5-10 s), loaded into the session ``twin`` beside :func:`twin_catalog` (only by tests that ask for
    it). Far from the British Columbia pair: a search by tile, bbox or ids finds what it found before;
    a search over the whole collection also sees these items."""
    catalog = generate_sentinel2(
        samples=OAKLAND_S2_TEST_SAMPLES,
        seed=TEST_SEED,
        cache_dir=tmp_path_factory.mktemp("twin-oakland-s2"),
    )
    twin.load_catalog(catalog)
    return catalog
