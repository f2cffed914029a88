"""Outages leave samples pending, never dropped, and a rerun completes them (issue 14, item 1).

Real twin, real fault proxies (``olmoearth_twin.servers.faults``): one in front of the SAS token
endpoint, one in front of the blob server, each put in an outage on purpose. One corpus lives through
a SAS 401, an unreachable SAS endpoint and a blob host answering 503 past the retries: every build
exits non-zero naming the host and the failure, nothing is dropped, and once the services are back a
rerun equals an uninterrupted build. A 503 shorter than the retry policy is ridden out, and a rerun
asking for more modalities builds them.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest
import zarr

from olmoearth_data.cli import main
from olmoearth_data.missing import SampleStatus
from olmoearth_data.samples import write_sample_table
from olmoearth_twin import Catalog, FaultConfig, FaultProxy, Twin

from .build_helpers import SAMPLES, build_args, cluster, corpus_checksums, index_frame, subscription_key

pytestmark = [pytest.mark.twin]


def _proxy(upstream: str) -> FaultProxy:
    proxy = FaultProxy(upstream=upstream, config=FaultConfig(rate=0.0))
    proxy.start()
    return proxy


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Env:
    """The module's twin access: proxies, scheduler, sample table, search cache."""

    def __init__(self, twin: Twin, work: Path, scheduler: str) -> None:
        sas_base = twin.sas_url.split("/api/")[0]
        self.sas = _proxy(sas_base)  # the build's token endpoint, healthy
        self.sas_401 = _proxy(sas_base)  # one that will answer 401 (a worker caches tokens per endpoint)
        self.blobs = _proxy(twin.direct_assets_url)
        self.twin, self.work, self.scheduler = twin, work, scheduler
        self.table = work / "samples.parquet"
        write_sample_table(self.table, samples=SAMPLES)

    def sas_url(self, proxy: FaultProxy) -> str:
        return f"{proxy.url}/api/sas/v1/token"

    def args(self, corpus: str, *, sas_url: str | None = None, **kw) -> list[str]:
        sas_url = sas_url or self.sas_url(self.sas)
        return build_args(corpus=self.work / corpus, table=self.table, cache=self.work / "cache",
                          scheduler=self.scheduler, stac_url=self.twin.stac_url,
                          blob_endpoint=self.blobs.url, sas_url=sas_url, **kw)  # fmt: skip

    def stop(self) -> None:
        for proxy in (self.sas, self.sas_401, self.blobs):
            proxy.stop()


@pytest.fixture(scope="module")
def env(twin: Twin, twin_collections: Catalog, tmp_path_factory: pytest.TempPathFactory):
    with subscription_key(), cluster() as scheduler:
        running = Env(twin, tmp_path_factory.mktemp("outages"), scheduler)
        try:
            yield running
        finally:
            running.stop()


@pytest.fixture(scope="module")
def clean(env: Env) -> Path:
    """The uninterrupted build every recovered corpus must equal."""
    assert main(env.args("clean.zarr")) == 0
    status = zarr.open_group(str(env.work / "clean.zarr"), mode="r")["status"][:]
    assert list(status) == [SampleStatus.COMPLETE] * len(SAMPLES)
    return env.work / "clean.zarr"


def _build(env: Env, capsys, args: list[str]) -> tuple[int, str, float]:
    capsys.readouterr()
    started = time.monotonic()
    code = main(args)
    return code, capsys.readouterr().err, time.monotonic() - started


def _assert_pending(corpus: Path, err: str, *, host: str, failure: str) -> None:
    group = zarr.open_group(str(corpus), mode="r")
    assert list(group["status"][:]) == [SampleStatus.PENDING] * len(SAMPLES), "an outage must drop nothing"
    reasons = [str(r) for r in group["status_reason"][:]]
    assert all(r.startswith("pending: ") and host in r for r in reasons), reasons
    line = next(
        line for line in err.splitlines() if line.startswith("olmoearth-data: error: build incomplete")
    )
    assert f"{len(SAMPLES)} samples left pending (not dropped)" in line
    assert host in line and failure in line, line


def test_outages_leave_samples_pending_and_a_rerun_completes_them(env: Env, clean: Path, capsys) -> None:
    corpus = env.work / "outage.zarr"
    # 1. The SAS endpoint answers 401 (a key rejected by APIM), past the retries.
    env.sas_401.set_outage("401")
    code, err, _ = _build(env, capsys, env.args(corpus.name, sas_url=env.sas_url(env.sas_401)))
    assert code == 3, err
    _assert_pending(corpus, err, host=env.sas_401.url.split("//")[1], failure="HTTP 401")
    assert env.sas_401.stats.injected["outage-401"] >= 2, "the 401 must be retried with the run's policy"
    # 2. The SAS endpoint cannot be reached at all: bounded by the run's policy, not the SDK's ~7 min.
    down = f"127.0.0.1:{_closed_port()}"
    code, err, took = _build(env, capsys, env.args(corpus.name, sas_url=f"http://{down}/api/sas/v1/token"))
    assert code == 3, err
    _assert_pending(corpus, err, host=down, failure="connection refused")
    assert took < 20, f"an unreachable SAS endpoint took {took:.1f} s"
    # 3. The blob host answers 503 for longer than the retries.
    env.blobs.set_outage("503")
    try:
        code, err, _ = _build(env, capsys, env.args(corpus.name))
    finally:
        env.blobs.clear_outage()
    assert code == 3, err
    _assert_pending(corpus, err, host=env.blobs.url.split("//")[1], failure="HTTP 503")
    # 4. Everything is back: the rerun builds the pending samples, and equals the clean build.
    env.sas_401.clear_outage()
    code, err, _ = _build(env, capsys, env.args(corpus.name, sas_url=env.sas_url(env.sas_401)))
    assert code == 0, err
    assert corpus_checksums(corpus) == corpus_checksums(clean)
    assert index_frame(corpus).equals(index_frame(clean))


def test_a_503_shorter_than_the_retries_is_ridden_out(env: Env, clean: Path, capsys) -> None:
    """GDAL's per-request retries (0.2 s, doubling: 6.2 s in all) outlast a 2 s 503 outage."""
    env.blobs.set_outage("503", seconds=2.0)
    before = env.blobs.stats.injected.get("outage-503", 0)
    code, err, _ = _build(env, capsys, env.args("ridden.zarr", retries=6, backoff_s=0.2))
    assert code == 0, err
    assert env.blobs.stats.injected.get("outage-503", 0) > before, "no read met the outage"
    assert corpus_checksums(env.work / "ridden.zarr") == corpus_checksums(clean)


def test_a_rerun_with_more_modalities_builds_them(env: Env, clean: Path, capsys) -> None:
    corpus = env.work / "widened.zarr"
    code, err, _ = _build(env, capsys, env.args(corpus.name, modalities="sentinel1"))
    assert code == 0, err
    s1 = {p: p.stat().st_mtime_ns for p in (corpus / "sentinel1").rglob("*") if "/c/" in p.as_posix()}
    assert s1, "the first build wrote no Sentinel-1 shard"
    code, err, _ = _build(env, capsys, env.args(corpus.name, modalities="sentinel1,worldcover"))
    assert code == 0, err
    assert "adding modalities worldcover" in err
    group = zarr.open_group(str(corpus), mode="r")
    assert [m["name"] for m in group.attrs["olmoearth"]["modalities"]["modalities"]] == [
        "sentinel1",
        "worldcover",
    ]
    assert np.asarray(group["worldcover/present"][:]).any(), "the added modality was not built"
    assert corpus_checksums(corpus) == corpus_checksums(clean)
    assert index_frame(corpus).equals(index_frame(clean))
    # Only the new modality was materialised: the Sentinel-1 shards were not rewritten.
    assert {p: p.stat().st_mtime_ns for p in s1} == s1
    # A rerun with the narrower set resumes the whole corpus and finds nothing to do.
    code, err, _ = _build(env, capsys, env.args(corpus.name, modalities="sentinel1"))
    assert code == 0, err
