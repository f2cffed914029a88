"""`make demo`'s path, end to end, as a real subprocess (small: 2 tiles, a few steps)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.twin, pytest.mark.slow]


def test_demo_script_runs_offline_end_to_end(tmp_path: Path) -> None:
    data, run = tmp_path / "data", tmp_path / "run"
    cmd = [
        sys.executable,
        "scripts/demo.py",
        "--tiles",
        "2",
        "--steps",
        "12",
        "--data",
        str(data),
        "--run",
        str(run),
        "global_batch=2",
        "microbatch=2",
        "probe_every=4",
    ]
    out = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for path in (
        data / "s2.zarr",
        run / "metrics.jsonl",
        run / "model.pt",
        run / "loss.png",
        run / "quicklook.png",
    ):
        assert path.exists(), path
        assert str(path) in out.stdout or path.suffix in (".jsonl", ".pt")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(12))
    assert "probe-batch loss" in out.stdout
    assert "INFO distributed" not in out.stdout + out.stderr
