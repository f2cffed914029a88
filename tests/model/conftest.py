"""Shared fixtures of the model tests."""

from __future__ import annotations

import numpy as np
import pytest

from olmoearth_data.modalities import ModalitySpec, modality_set


@pytest.fixture(scope="session")
def v1() -> tuple[ModalitySpec, ...]:
    return modality_set("v1")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
