"""``olmoearth-twin serve`` (what ``make twin`` runs) as a real subprocess: it serves every STAC
collection and tile index the ``default`` modality set reads, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from olmoearth_data.modalities import modality_set
from olmoearth_data.samples import write_sample_table
from olmoearth_data.sources import SOURCES, SourceKind
from olmoearth_twin.catalog.samples import DEMO_SAMPLES, OAKLAND
from olmoearth_twin.cli import _parser, _samples

REPO_ROOT = Path(__file__).resolve().parents[2]
# The catalogue cache `make demo` and the demo test use: warm when they ran first.
DEMO_CACHE = REPO_ROOT / "build" / "twin" / "cache"
pytestmark = [pytest.mark.twin, pytest.mark.slow]


def test_defaults_are_the_demo_samples_and_every_default_set_source() -> None:
    args = _parser().parse_args(["serve"])
    assert args.collections == "default"
    assert _samples(args) == DEMO_SAMPLES


def test_bad_sample_choice_is_one_line_exit_2(tmp_path: Path) -> None:
    for argv in (["--tiles", "99"], ["--samples", str(tmp_path / "missing.parquet")]):
        out = subprocess.run(
            [sys.executable, "-m", "olmoearth_twin.cli", "generate", *argv],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 2, out.stderr
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
        assert "--tiles" in out.stderr or "missing.parquet" in out.stderr


def _default_set_sources() -> tuple[set[str], set[str]]:
    """(STAC collections, tile-index collections) the ``default`` set reads."""
    sources = [SOURCES[spec.name] for spec in modality_set("default")]
    stac = {s.collection for s in sources if s.kind == SourceKind.STAC}
    indexes = {s.collection for s in sources if s.kind == SourceKind.TILE_INDEX}
    return stac, indexes


def test_serve_answers_collections_of_the_default_set() -> None:
    stac, indexes = _default_set_sources()
    assert {"sentinel-2-l2a", "sentinel-1-rtc", "landsat-c2-l2", "usda-cdl"} <= stac
    work = Path(tempfile.mkdtemp(prefix="olmoearth-twin-cli-"))
    os.chmod(work, 0o755)  # the twin's PostgreSQL runs unprivileged and must enter it
    table = work / "samples.parquet"
    write_sample_table(table, samples=[DEMO_SAMPLES[0], OAKLAND])  # the demo test's two samples
    cmd = [sys.executable, "-m", "olmoearth_twin.cli", "serve", "--samples", str(table)]
    cmd += ["--root", str(work / "twin"), "--cache-dir", str(DEMO_CACHE)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 540
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Ctrl-C to stop."):
                break
        text = "".join(lines)
        match = re.search(r"STAC API : (\S+)", text)
        assert match, text[-3000:]
        got = {
            c["id"] for c in requests.get(f"{match.group(1)}/collections", timeout=30).json()["collections"]
        }
        assert stac <= got, (sorted(stac - got), sorted(got))
        served_indexes = re.findall(r"index    : (\S+)", text)
        assert len(served_indexes) == len(indexes), text[-3000:]
        for url in served_indexes:
            features = requests.get(url, timeout=30).json()["features"]
            assert features, url
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
