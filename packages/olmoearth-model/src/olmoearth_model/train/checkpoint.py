"""Checkpoints with everything an exact resume needs: weights, optimiser, position in the data, RNG.

Batches are a pure function of (seed, epoch, batch index), so the loader's state is just where the
next batch is. The torch RNG (DropPath) is saved too; on CPU a resumed run then reproduces an
uninterrupted run's losses bit for bit. Files are written to a temporary name and renamed, so a kill
mid-save leaves the previous checkpoint intact. Loading uses ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

CHECKPOINT_NAME = "checkpoint.pt"


@dataclass
class TrainState:
    """Where training stands after ``step`` optimiser steps."""

    step: int = 0
    epoch: int = 0
    next_batch: int = 0  # index of the next global batch within ``epoch``


def save_checkpoint(
    run_dir: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    config: dict,
) -> Path:
    path = Path(run_dir) / CHECKPOINT_NAME
    tmp = path.with_suffix(".pt.tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": state.step,
            "epoch": state.epoch,
            "next_batch": state.next_batch,
            "torch_rng": torch.get_rng_state(),
            "config": config,
        },
        tmp,
    )
    os.replace(tmp, path)
    return path


def load_checkpoint(
    run_dir: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device
) -> TrainState | None:
    """Restore model, optimiser and torch RNG from ``run_dir``; None when there is no checkpoint."""
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.exists():
        return None
    ckpt: dict[str, Any] = torch.load(path, map_location=device, weights_only=True)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    torch.set_rng_state(ckpt["torch_rng"].cpu())
    return TrainState(step=int(ckpt["step"]), epoch=int(ckpt["epoch"]), next_batch=int(ckpt["next_batch"]))
