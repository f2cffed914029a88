"""Fixtures of the evaluation tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from .label_corpus import write_label_corpus


@pytest.fixture(scope="session")
def label_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 samples of :func:`write_label_corpus` (S2 + WorldCover), written once per session."""
    return write_label_corpus(tmp_path_factory.mktemp("label-corpus") / "labels.zarr")
