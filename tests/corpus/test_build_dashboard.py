"""The build's dask dashboard (issue #8): ``olmoearth-data build`` prints its link and the link answers
while the build runs; a build without progress serves no dashboard."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from olmoearth_data.build import local_cluster
from olmoearth_data.samples import write_sample_table
from olmoearth_twin import Twin
from olmoearth_twin.catalog.samples import SMALL_SAMPLES

LINK = re.compile(r"dask dashboard: (http://127\.0\.0\.1:(\d+)/status)")


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


@pytest.mark.twin
@pytest.mark.slow
def test_cli_build_prints_a_dashboard_link_that_answers(twin: Twin, tmp_path: Path) -> None:
    samples = list(SMALL_SAMPLES)
    write_sample_table(tmp_path / "samples.parquet", samples=samples)
    cmd = [
        sys.executable, "-m", "olmoearth_data.cli", "build",
        "--samples", str(tmp_path / "samples.parquet"), "--corpus", str(tmp_path / "c.zarr"),
        "--modalities", "s2", "--samples-per-shard", "1", "--workers", "2",
        "--cache-dir", str(tmp_path / "cache"), "--stac-url", twin.stac_url,
        "--blob-endpoint", twin.assets_url, "--retries", "3", "--backoff-s", "0.01", "--max-per-host", "4",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr: list[str] = []
    answered: dict[str, tuple[int, bytes]] = {}

    def read_stderr() -> None:
        # The dashboard is fetched as soon as its line appears, i.e. while the shards are still building.
        for line in proc.stderr:
            stderr.append(line)
            m = LINK.search(line)
            if m and not answered:
                answered[m.group(1)] = _get(m.group(1))
                answered["done_before_answer"] = (proc.poll() is not None, b"")

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    stdout = proc.stdout.read()
    assert proc.wait(timeout=300) == 0, "".join(stderr)[-3000:]
    reader.join(timeout=30)
    links = [m for line in stderr if (m := LINK.search(line))]
    assert len(links) == 1, "".join(stderr)[-3000:]
    url, port = links[0].group(1), int(links[0].group(2))
    assert 0 < port < 65536
    status, body = answered[url]
    assert status == 200 and b"bokeh" in body.lower(), "the dashboard page must be served while building"
    assert answered["done_before_answer"][0] is False, "the build had finished before the link was fetched"
    assert '"complete": 2' in stdout


def test_cluster_without_progress_serves_no_dashboard() -> None:
    """``progress=False``: the scheduler's HTTP server (health only) on a free loopback port, no bokeh."""
    cluster = local_cluster(workers=1, dashboard=False)
    try:
        server = cluster.scheduler.http_server
        assert server.address == "127.0.0.1"
        base = f"http://127.0.0.1:{server.port}"
        assert _get(f"{base}/health") == (200, b"ok")
        assert _get(f"{base}/status")[0] == 404
    finally:
        cluster.close()
