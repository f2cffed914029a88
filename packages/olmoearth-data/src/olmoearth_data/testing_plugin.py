"""Pytest plugin of the fast test tier: the session's fake corpus, and no PostgreSQL behind ``-m "not twin"``.

Registered for the repository's tests by ``-p olmoearth_data.testing_plugin`` in the root
``pyproject.toml`` (``[tool.pytest.ini_options] addopts``); listing it in a top-level conftest's
``pytest_plugins`` works as well (pytest registers a plugin once, however it is named twice).

- ``fake_corpus``: a corpus written once per session by :func:`olmoearth_data.testing.write_fake_corpus`
  with :data:`FAKE_CORPUS` (S2 + S1 + WorldCover, 7 samples in 4 shards, 1 dropped; ~5 s on 2 cores).
- Tests that reach the ``twin`` fixture (``olmoearth_twin.testing``: PostgreSQL, pgstac, the STAC API),
  directly or through another fixture such as ``s2_corpus``, are marked ``twin`` at collection, so
  ``pytest -m "not twin"`` (``make test-fast``) never starts the twin whatever a test's own marks say.
- ``--test-shard I/N``: run only shard ``I`` (0-based) of ``N`` of the selected test files, balanced
  by test count (``make test-fast`` runs its shards as parallel processes).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

#: Arguments of the session's ``fake_corpus`` (besides ``path``): 6 complete samples = 3 global
#: batches of 2, shards of 2 with a partial last one, two monthly modalities and a static map.
FAKE_CORPUS: dict[str, Any] = {
    "n_samples": 7,
    "modalities": "sentinel2_l2a,sentinel1,worldcover",
    "samples_per_shard": 2,
    "seed": 0,
    "n_dropped": 1,
}
#: Fixtures that start the twin (PostgreSQL); a test needing any of them is a ``twin`` test.
TWIN_FIXTURES = ("twin",)


@pytest.fixture(scope="session")
def fake_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``.zarr`` path of a fake corpus (:data:`FAKE_CORPUS`), written once per session; read-only."""
    from olmoearth_data.testing import write_fake_corpus  # zarr/xarray/dask only when a test asks

    return write_fake_corpus(path=tmp_path_factory.mktemp("fake-corpus") / "fake.zarr", **FAKE_CORPUS)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--test-shard",
        default=None,
        metavar="I/N",
        help="run only shard I (0-based) of N of the selected test files (balanced by test count)",
    )


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        needs = set(TWIN_FIXTURES) & set(getattr(item, "fixturenames", ()))
        if needs and item.get_closest_marker("twin") is None:
            item.add_marker(pytest.mark.twin)


def pytest_configure(config: pytest.Config) -> None:
    shard = config.getoption("--test-shard")
    if shard is not None:
        index, _, total = shard.partition("/")
        if not (index.isdigit() and total.isdigit() and int(index) < int(total)):
            raise pytest.UsageError(f"--test-shard {shard!r}: expected I/N with 0 ≤ I < N, e.g. 0/2")
        config.pluginmanager.register(_Shard(int(index), int(total)), "olmoearth-test-shard")


class _Shard:
    """Keeps the test files of one shard: after ``-m``/``-k`` have deselected, the files are dealt out
    largest first (by selected tests) to the shard with the fewest tests so far. Whole files, so no
    module fixture is set up twice; the count is a rough stand-in for time, good enough here."""

    def __init__(self, index: int, total: int) -> None:
        self.index, self.total = index, total

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        counts = Counter(item.path for item in items)  # files in collection order
        load, mine = [0] * self.total, set()
        for path, n in sorted(counts.items(), key=lambda kv: -kv[1]):  # stable: ties keep their order
            shard = load.index(min(load))
            load[shard] += n
            if shard == self.index:
                mine.add(path)
        config.hook.pytest_deselected(items=[item for item in items if item.path not in mine])
        items[:] = [item for item in items if item.path in mine]
