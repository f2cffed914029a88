"""Optional experiment trackers, fed the same scalars as ``metrics.jsonl``: TensorBoard and W&B.

Only rank 0 logs. Each tracker's package is imported only when the config turns it on; both come
with the ``olmoearth-model[tracking]`` extra. TensorBoard scalars are stored as float64 tensors
(``new_style``, ``double_precision``), so they read back equal to the JSONL values. On resume the
TensorBoard writer purges events from the resumed step on, and W&B continues the same run id (kept in
``<run_dir>/wandb_run_id.txt``).
"""

from __future__ import annotations

import importlib
import os
import secrets
import string
from pathlib import Path
from typing import Any

from olmoearth_model.train.config import MetricsConfig

EXTRA = "olmoearth-model[tracking]"
TENSORBOARD_DIR = "tensorboard"
WANDB_ID_FILE = "wandb_run_id.txt"


class MissingTrackerError(ImportError):
    """An enabled tracker's package is not installed."""


def _import(module: str, *, key: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingTrackerError(
            f"{key} is on but {module.split('.')[0]!r} is not installed ({exc}); "
            f"install the extra: pip install '{EXTRA}', or turn {key} off"
        ) from exc


def check_trackers(config: MetricsConfig) -> None:
    """Raise :class:`MissingTrackerError` if an enabled tracker cannot be imported.

    Call it on every rank before training starts, so a missing package stops all ranks alike
    instead of rank 0 alone while the others wait in a collective.
    """
    if config.tensorboard:
        _import("torch.utils.tensorboard", key="metrics.tensorboard")
    if config.wandb is not None:
        _import("wandb", key="metrics.wandb")


def scalars_of(record: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of a JSONL record, without ``step`` (None, e.g. MFU off-GPU, is skipped)."""
    return {
        k: float(v)
        for k, v in record.items()
        if k != "step" and isinstance(v, int | float) and not isinstance(v, bool)
    }


class Trackers:
    """The enabled trackers of one run (rank 0). ``log`` each JSONL record, ``close`` at the end."""

    def __init__(
        self, *, config: MetricsConfig, run_dir: Path, run_config: dict[str, Any], start_step: int
    ) -> None:
        """Open the trackers ``config`` enables for ``run_dir``, continuing from ``start_step`` (0: fresh)."""
        self._tb = None
        self._wandb_run = None
        if config.tensorboard:
            tb = _import("torch.utils.tensorboard", key="metrics.tensorboard")
            self._tb = tb.SummaryWriter(
                log_dir=str(Path(run_dir) / TENSORBOARD_DIR), purge_step=start_step or None
            )
        if config.wandb is not None:
            wandb = _import("wandb", key="metrics.wandb")
            id_file = Path(run_dir) / WANDB_ID_FILE
            if start_step > 0 and id_file.exists():
                run_id = id_file.read_text().strip()
            else:
                run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
                id_file.write_text(run_id + "\n")
            self._wandb_run = wandb.init(
                project=config.wandb.project,
                entity=config.wandb.entity,
                name=config.wandb.name or Path(run_dir).name,
                mode=config.wandb.mode,
                # beside the run unless WANDB_DIR says otherwise
                dir=None if os.environ.get("WANDB_DIR") else str(run_dir),
                config=run_config,
                id=run_id,
                resume="allow",
            )

    @property
    def enabled(self) -> bool:
        return self._tb is not None or self._wandb_run is not None

    def log(self, record: dict[str, Any]) -> None:
        """Log a JSONL record's scalars at its ``step``."""
        step = int(record["step"])
        scalars = scalars_of(record)
        if self._tb is not None:
            for key, value in scalars.items():
                self._tb.add_scalar(key, value, step, new_style=True, double_precision=True)
        if self._wandb_run is not None:
            self._wandb_run.log(scalars, step=step)

    def flush(self) -> None:
        """Write buffered TensorBoard events (at checkpoints, so a kill loses at most one interval)."""
        if self._tb is not None:
            self._tb.flush()

    def close(self, *, failed: bool = False) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb_run is not None:
            self._wandb_run.finish(exit_code=1 if failed else 0)
            self._wandb_run = None
