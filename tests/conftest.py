"""Shared test configuration: paths to the reference material beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest

# One Planetary Computer twin per session, shared by every test folder (tests/twin, tests/pipeline, …).
pytest_plugins = ["olmoearth_twin.testing"]

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"reference material not found at {SHARED} (expected ../shared beside the repository)")
    return SHARED
