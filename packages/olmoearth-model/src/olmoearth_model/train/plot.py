"""Plot a run's metrics to PNG (loss parts, probe loss, learning rate)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def read_metrics(path: Path | str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_run(run_dir: Path | str, *, out: Path | str | None = None) -> Path:
    """Write ``loss.png`` (or ``out``) for the run in ``run_dir``; returns its path."""
    run_dir = Path(run_dir)
    rows = read_metrics(run_dir / "metrics.jsonl")
    out = Path(out) if out else run_dir / "loss.png"
    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=(3, 1))
    steps = [r["step"] for r in rows]
    ax_loss.plot(steps, [r["loss"] for r in rows], lw=0.8, alpha=0.6, label="train loss (batch)")
    probe = [(r["step"], r["probe_loss"]) for r in rows if "probe_loss" in r]
    if probe:
        ax_loss.plot(*zip(*probe), "o-", color="C3", label="probe batch loss (eval)")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    ax_lr.plot(steps, [r["lr"] for r in rows], color="C2")
    ax_lr.set_ylabel("lr")
    ax_lr.set_xlabel("step")
    fig.suptitle(run_dir.name)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
