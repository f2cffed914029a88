"""Test configuration shared by every folder: the session twin and the Sentinel-2 corpus built on it.

Reference fixtures (recorded STAC JSON, rasters, OSM extracts) ship inside ``olmoearth_twin``; tests
find them with :func:`olmoearth_twin.fixtures.fixture_path`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# One Planetary Computer twin per session, shared by every test folder (tests/twin, tests/pipeline, …).
pytest_plugins = ["olmoearth_twin.testing"]


@pytest.fixture(scope="session")
def s2_corpus(twin):
    """A Sentinel-2 corpus of the twin's 2 test samples, built once per session with the real pipeline.

    Built twice: the second build must find every shard complete and write nothing (resumability).
    """
    import shutil
    import tempfile

    from olmoearth_data.build import BuildConfig, build_corpus
    from olmoearth_data.samples import write_sample_table
    from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy
    from olmoearth_data.stats import compute_norm_stats
    from olmoearth_twin.catalog.samples import SMALL_SAMPLES

    work = Path(tempfile.mkdtemp(prefix="olmoearth-s2-corpus-"))
    table = work / "samples.parquet"
    write_sample_table(table, samples=list(SMALL_SAMPLES))
    catalog = CatalogConfig(
        stac_url=twin.stac_url, blob_endpoint=twin.assets_url, retry=RetryPolicy(attempts=3, backoff_s=0.01)
    )
    config = BuildConfig(
        corpus=str(work / "s2.zarr"),
        sample_table=str(table),
        modalities="s2",
        samples_per_shard=1,
        cache_dir=str(work / "cache"),
        workers=2,
        catalog=catalog,
    )
    summary = build_corpus(config)
    assert (summary.complete, summary.shards_built) == (2, 2)
    assert build_corpus(config).shards_built == 0
    compute_norm_stats(config.corpus)
    yield Path(config.corpus)
    shutil.rmtree(work, ignore_errors=True)
