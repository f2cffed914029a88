"""Fixtures of the corpus tests: ``osm_corpus``, the issue-scale corpus built once per session (how:
:mod:`osm_corpus_build`, a uniquely named module so test files import it without the ``conftest``
name clash between test folders)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from osm_corpus_build import KOTKA_OSM, OsmCorpus, build_osm_corpus


@pytest.fixture(scope="session")
def osm_corpus() -> Iterator[OsmCorpus]:
    if not KOTKA_OSM.is_file():
        pytest.fail(f"OSM fixture not found at {KOTKA_OSM} (expected ../shared beside the repository)")
    # Not pytest's tmp dir: as root, the twin's PostgreSQL runs unprivileged and cannot enter 0700 dirs.
    work = Path(tempfile.mkdtemp(prefix="olmoearth-osm-corpus-"))
    os.chmod(work, 0o755)
    try:
        yield build_osm_corpus(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
