"""When to checkpoint: every ``checkpoint.every_steps``, at the end, and on SIGTERM (pre-emption).

SIGTERM sets a flag; the loop finishes its step, and at the next rank check (every step alone, every
``parallel.sync_every`` steps under torchrun, where the ranks agree in one all-reduce) every rank
saves and the run returns normally, so the process exits 0. ``torchrun`` forwards SIGTERM to the
whole process group of each rank; the loader workers block it (:mod:`~olmoearth_model.train.feed`),
so they live until the rank shuts them down after the checkpoint.
"""

from __future__ import annotations

import signal
from pathlib import Path

import torch

from olmoearth_model.train.checkpoint import TrainState, load_checkpoint, save_checkpoint
from olmoearth_model.train.config import CheckpointConfig


class Checkpointer:
    """Saves and restores ``run_dir/checkpoint.pt``; owns the SIGTERM handler while it is open."""

    def __init__(self, *, run_dir: Path, config: CheckpointConfig, run_config: dict, is_main: bool) -> None:
        self.run_dir, self.config, self.run_config, self.is_main = run_dir, config, run_config, is_main
        self.stop_requested = False
        self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _on_sigterm(self, signum: int, frame: object) -> None:
        self.stop_requested = True

    def restore(self, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> TrainState:
        """The state to start from: the checkpoint's when resuming and one exists, else step 0."""
        state = None
        if self.config.resume:
            state = load_checkpoint(self.run_dir, model=model, optimizer=optimizer)
        return state or TrainState()

    def due(self, *, step: int, max_steps: int, stopping: bool) -> bool:
        """Save after optimiser step ``step`` (1-based count)?"""
        return stopping or step % self.config.every_steps == 0 or step >= max_steps

    def save(self, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: TrainState) -> None:
        """Every rank calls (gathering FSDP2 shards is a collective); rank 0 writes."""
        save_checkpoint(
            self.run_dir, model=model, optimizer=optimizer, state=state, config=self.run_config,
            is_main=self.is_main,
        )  # fmt: skip

    def close(self) -> None:
        signal.signal(signal.SIGTERM, self._previous)
