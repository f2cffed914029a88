"""Pre-emption: SIGTERM to ``torchrun`` (and to a single process) checkpoints, and the rerun resumes
bit-identically, with loader workers running (they block SIGTERM and outlive the rank's checkpoint)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.train.conftest import small_config

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
ENV = os.environ | {"OMP_NUM_THREADS": "1"}


def _losses(run: Path) -> list[tuple[int, float, float]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"], r["grad_norm"]) for r in rows]


def _command(launcher: list[str], config: Path) -> list[str]:
    return [*launcher, "-m", "olmoearth_model.cli", "train", "--config", str(config)]


def _terminate_after(cmd: list[str], *, metrics: Path, lines: int) -> subprocess.CompletedProcess:
    """Start ``cmd`` in its own session, SIGTERM its launcher once ``metrics`` has ``lines`` rows."""
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= lines:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)  # the launcher only, as a scheduler pre-empting the job does
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["torchrun", "single"])
def test_sigterm_checkpoints_and_the_rerun_resumes_bit_identically(
    launcher: str, fake_corpus: Path, tmp_path: Path
) -> None:
    prefix = TORCHRUN if launcher == "torchrun" else [sys.executable]
    overrides = (
        "schedule.max_steps=10",
        "data.num_workers=1",
        "parallel.sync_every=2",
        "checkpoint.every_steps=100",
    )
    straight = small_config(fake_corpus, tmp_path / "a", *overrides)
    straight.save(tmp_path / "a.yaml")
    done = subprocess.run(_command(prefix, tmp_path / "a.yaml"), env=ENV, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]

    small_config(fake_corpus, tmp_path / "b", *overrides).save(tmp_path / "b.yaml")
    cmd = _command(prefix, tmp_path / "b.yaml")
    stopped = _terminate_after(cmd, metrics=tmp_path / "b" / "metrics.jsonl", lines=3)
    step = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"]
    assert 3 <= step < 10 and not (tmp_path / "b" / "model.pt").exists(), step
    if launcher == "torchrun":
        assert step % 2 == 0  # the ranks agree on stopping at a rank check (every parallel.sync_every steps)
        # every rank checkpointed and returned cleanly; torchrun itself reports its own SignalException
        assert stopped.stdout.count("stopped by SIGTERM: checkpoint in") == 1, stopped.stdout
        assert "RuntimeError" not in stopped.stderr and "DataLoader worker" not in stopped.stderr
    else:
        assert stopped.returncode == 0, stopped.stderr[-3000:]
        assert "stopped by SIGTERM: checkpoint in" in stopped.stdout

    resumed = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _losses(tmp_path / "b") == _losses(tmp_path / "a")  # exact float equality, every step
