"""Shared fixtures for the OSM tests: the three real OSM extracts and their extractions (module-scoped)."""

from __future__ import annotations

from pathlib import Path

import pytest

from olmoearth_data.osm.extract import ExtractResult, extract_osm

OSM_DIR = Path("/work/shared/fixtures/osm")
OAKLAND = OSM_DIR / "West-Oakland.osm.bz2"
KOTKA = OSM_DIR / "test.osm.pbf"
BAVARIA = OSM_DIR / "planet_10.068,48.135_10.071,48.137.osm"
ALL = [OAKLAND, KOTKA, BAVARIA]


@pytest.fixture(scope="session")
def extractions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ExtractResult]:
    root = tmp_path_factory.mktemp("osm_extract")
    return {p.name: extract_osm(path=p, out_dir=root / p.name, buckets=2) for p in ALL}
