"""``make bench-gpu`` cannot rot: its CPU dry-run runs every part (steps, compile, FSDP2, loader)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_gpu_dry_run_runs_every_part(tmp_path: Path) -> None:
    out = tmp_path / "gpu_dry-run.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--dry-run", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env=os.environ | {"OMP_NUM_THREADS": "1"})  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text())
    assert report["dry_run"] is True and report["machine"]["card"] == "dry-run"
    variants = {(r["compile"], r["optimizer"]) for r in report["steps"]}
    assert variants == {(False, "fused AdamW"), (True, "fused AdamW"), (False, "for-each AdamW")}
    assert [r["parallel"] for r in report["fsdp2"]] == ["fsdp2 x1"]
    for row in report["steps"] + report["fsdp2"]:
        assert row["samples_per_s"] > 0 and row["flops_per_step"] > 0 and row["loss"] == row["loss"]
    assert report["loader"]["steps"] == 3 and 0 <= report["loader"]["data_wait_share_median"] <= 1


def test_bench_gpu_without_a_gpu_says_so_in_one_line() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the benchmark would run")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "bench-gpu: no CUDA device here; run it on a GPU machine, or --dry-run for the CPU check"
    ]
