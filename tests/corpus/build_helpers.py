"""Shared pieces of the outage / secrets / atomic-creation build tests (issue 14).

``olmoearth-data build`` is run in process through :func:`olmoearth_data.cli.main` (its exit code and
stderr are what a user sees) against a module's own dask LocalCluster, so a build costs its work, not a
cluster start. Corpora are compared array by array (:func:`corpus_checksums`) and by their sample index.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from olmoearth_data.build import local_cluster
from olmoearth_data.index import index_path
from olmoearth_data.samples import Sample
from olmoearth_twin.servers.twin import reset_pc_sdk
from olmoearth_twin.testing import COLLECTIONS_TEST_SAMPLES

from .test_resume_kill import corpus_checksums

__all__ = ["KEY", "SAMPLES", "build_args", "cluster", "corpus_checksums", "index_frame", "subscription_key"]

#: British Columbia and West Oakland: Sentinel-1 in most periods, WorldCover in Oakland only.
SAMPLES = [Sample(s.tile, s.centre) for s in (COLLECTIONS_TEST_SAMPLES[0], COLLECTIONS_TEST_SAMPLES[2])]
#: The PC subscription key the builds run with (Sentinel-1 RTC needs one); must never be persisted.
KEY = "issue14-subscription-key-do-not-persist"


@contextmanager
def subscription_key(value: str = KEY) -> Iterator[None]:
    """``PC_SDK_SUBSCRIPTION_KEY`` set for a block (dask workers started inside inherit it)."""
    saved = os.environ.get("PC_SDK_SUBSCRIPTION_KEY")
    os.environ["PC_SDK_SUBSCRIPTION_KEY"] = value
    reset_pc_sdk()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PC_SDK_SUBSCRIPTION_KEY", None)
        else:
            os.environ["PC_SDK_SUBSCRIPTION_KEY"] = saved
        reset_pc_sdk()


@contextmanager
def cluster() -> Iterator[str]:
    """A one-worker LocalCluster for a module's builds; yields the scheduler address."""
    with local_cluster(workers=1, dashboard=False) as running:
        yield running.scheduler_address


def build_args(
    *,
    corpus: Path,
    table: Path,
    cache: Path,
    scheduler: str,
    stac_url: str,
    blob_endpoint: str,
    sas_url: str,
    modalities: str = "sentinel1,worldcover",
    retries: int = 2,
    backoff_s: float = 0.01,
    samples_per_shard: int = 2,
    extra: Sequence[str] = (),
) -> list[str]:
    """``olmoearth-data build`` arguments for a small, fast twin build."""
    return [
        "build", "--samples", str(table), "--corpus", str(corpus), "--modalities", modalities,
        "--samples-per-shard", str(samples_per_shard), "--workers", "1", "--scheduler", scheduler,
        "--cache-dir", str(cache), "--stac-url", stac_url, "--blob-endpoint", blob_endpoint,
        "--sas-url", sas_url, "--retries", str(retries), "--backoff-s", str(backoff_s), *extra,
    ]  # fmt: skip


def index_frame(corpus: Path) -> pd.DataFrame:
    """The corpus's sample index, columns sorted (a widened corpus lists its modalities in build order)."""
    df = pd.DataFrame(pd.read_parquet(index_path(corpus)))
    return df[sorted(df.columns)]
