"""Fixtures of the corpus tests: ``osm_corpus``, the issue-scale corpus built once per session (how:
:mod:`tests.corpus.osm_corpus_build`, which test files import too)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .osm_corpus_build import OsmCorpus, build_osm_corpus


@pytest.fixture(scope="session")
def osm_corpus() -> Iterator[OsmCorpus]:
    # Not pytest's tmp dir: as root, the twin's PostgreSQL runs unprivileged and cannot enter 0700 dirs.
    work = Path(tempfile.mkdtemp(prefix="olmoearth-osm-corpus-"))
    os.chmod(work, 0o755)
    try:
        yield build_osm_corpus(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
