"""Plot a run's metrics to PNG: the loss smoothed over the raw per-batch values, the probe loss, the lr."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

#: Weight of the past in the smoothed loss (TensorBoard's "smoothing" slider; 0.9 ≈ the last ~10 steps).
SMOOTHING = 0.9


def read_metrics(path: Path | str) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def smoothed(values: Sequence[float], *, weight: float = SMOOTHING) -> np.ndarray:
    """Exponential moving average with the start-up bias removed (as TensorBoard's), float64 ``[N]``:
    the first points are not dragged toward 0, and a NaN value is skipped, not propagated."""
    out, mean, norm = np.empty(len(values)), 0.0, 0.0
    for i, value in enumerate(values):
        if np.isfinite(value):
            mean, norm = weight * mean + (1 - weight) * value, weight * norm + (1 - weight)
        out[i] = mean / norm if norm else np.nan
    return out


def plot_run(run_dir: Path | str, *, out: Path | str | None = None) -> Path:
    """Write ``loss.png`` (or ``out``) for the run in ``run_dir``; returns its path."""
    run_dir = Path(run_dir)
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "loss" in r]
    out = Path(out) if out else run_dir / "loss.png"
    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=(3, 1))
    steps = [r["step"] for r in rows]
    loss = [float(r["loss"]) for r in rows]
    ax_loss.plot(steps, loss, lw=0.7, color="C0", alpha=0.25, label="train loss (each batch)")
    ax_loss.plot(steps, smoothed(loss), lw=1.6, color="C0", label=f"train loss (smoothed, EMA {SMOOTHING:g})")
    probe = [(r["step"], r["probe_loss"]) for r in rows if "probe_loss" in r]
    if probe:
        ax_loss.plot(*zip(*probe), "o-", ms=3, color="C3", label="probe batch loss (fixed batch, eval)")
    ax_loss.set_ylabel("loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    ax_lr.plot(steps, [r["lr"] for r in rows], color="C2")
    ax_lr.set_ylabel("lr")
    ax_lr.set_xlabel("step")
    fig.suptitle(f"{run_dir.name}: {len(rows)} steps")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
