"""The run log (rank 0): ``metrics.jsonl``, the experiment trackers and the console line, fed together."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from olmoearth_model.train.config import TrainConfig
from olmoearth_model.train.metrics import console_line, console_step, evaluation_text, open_metrics
from olmoearth_model.train.tracking import Trackers


class RunLog:
    """Where records go: one JSONL line each (flushed), the trackers, and the console.

    Opened on rank 0 only (other ranks hold no RunLog). On resume, rows of steps from ``start_step``
    on are dropped from ``metrics.jsonl`` and the trackers continue from there.
    """

    def __init__(self, *, run_dir: Path, config: TrainConfig, start_step: int) -> None:
        self._jsonl = open_metrics(run_dir / "metrics.jsonl", keep_below=start_step)
        self._total = config.schedule.max_steps
        try:
            self._trackers = Trackers(
                config=config.metrics, run_dir=run_dir, run_config=config.to_dict(), start_step=start_step
            )
        except BaseException:
            self._jsonl.close()
            raise

    def write(self, record: dict[str, Any], *, console: bool = True) -> None:
        """Append ``record`` to the JSONL and the trackers; print its console line if ``console``."""
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        self._trackers.log(record)
        if console:
            print(console_line(record, total=self._total), file=sys.stderr, flush=True)
        elif (evaluated := evaluation_text(record)) is not None:  # an evaluation between console lines
            print(f"{console_step(record['step'], self._total)}{evaluated}", file=sys.stderr, flush=True)

    def flush(self) -> None:
        self._trackers.flush()

    def close(self, *, failed: bool) -> None:
        self._jsonl.close()
        self._trackers.close(failed=failed)
