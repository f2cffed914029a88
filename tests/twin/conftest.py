"""Fixtures of the twin tests; ``twin``/``twin_catalog`` come from :mod:`olmoearth_twin.testing`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from olmoearth_twin import Catalog
from olmoearth_twin.fixtures import fixtures_root


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """The packaged reference fixtures (``olmoearth_twin/fixtures``)."""
    return fixtures_root()


@pytest.fixture(scope="session")
def real_item(fixtures_dir: Path) -> dict[str, Any]:
    """The recorded PC sentinel-2-l2a item (2025, baseline 05.11)."""
    return json.loads((fixtures_dir / "stac-extracted/sentinel-2-l2a.items-limit1.json").read_text())[
        "features"
    ][0]


@pytest.fixture(scope="session")
def manifest(twin_catalog: Catalog) -> dict[str, Any]:
    return twin_catalog.manifest()
