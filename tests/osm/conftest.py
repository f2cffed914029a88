"""Shared fixtures for the OSM tests: the three real OSM extracts and their extractions (module-scoped)."""

from __future__ import annotations

import pytest

from olmoearth_data.osm.extract import ExtractResult, extract_osm
from olmoearth_twin.fixtures import fixture_path

OAKLAND = fixture_path("osm/West-Oakland.osm.bz2")
KOTKA = fixture_path("osm/test.osm.pbf")
BAVARIA = fixture_path("osm/planet_10.068,48.135_10.071,48.137.osm")
ALL = [OAKLAND, KOTKA, BAVARIA]


@pytest.fixture(scope="session")
def extractions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ExtractResult]:
    root = tmp_path_factory.mktemp("osm_extract")
    return {p.name: extract_osm(path=p, out_dir=root / p.name, buckets=2) for p in ALL}
