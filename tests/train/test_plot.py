"""The loss plot's smoothing (olmoearth_model.train.plot): an EMA without start-up bias, NaN-tolerant."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from olmoearth_model.train.plot import plot_run, smoothed


def test_smoothing_has_no_start_up_bias_and_skips_nan() -> None:
    np.testing.assert_allclose(smoothed([2.0, 2.0, 2.0]), [2.0, 2.0, 2.0])  # not dragged toward 0
    # second value: (0.9·0.1·0 + 0.1·10) / (1 − 0.9²) = 1 / 0.19
    np.testing.assert_allclose(smoothed([0.0, 10.0]), [0.0, 1.0 / 0.19])
    out = smoothed([1.0, float("nan"), 1.0])
    assert np.isfinite(out).all() and np.allclose(out, 1.0)


def test_plot_run_writes_a_png(tmp_path: Path) -> None:
    rows = [{"step": i, "loss": 3.0 - 0.01 * i + 0.3 * (-1) ** i, "lr": 1e-4} for i in range(50)]
    rows[10]["probe_loss"] = 2.5
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = plot_run(tmp_path)
    assert out == tmp_path / "loss.png" and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
