"""Checkpoints with everything an exact resume needs: weights, optimiser, position in the data, RNG.

Batches are a pure function of (seed, epoch, batch index), so the loader's state is just where the
next batch is. The torch RNG (DropPath) is saved too; on CPU a resumed run then reproduces an
uninterrupted run's losses bit for bit. Files are written to a temporary name and renamed, so a kill
mid-save leaves the previous checkpoint intact. Loading uses ``torch.load(weights_only=True)``.

One format for every parallelism: weights and optimiser state go through the
``torch.distributed.checkpoint.state_dict`` API with ``full_state_dict=True``. Under FSDP2 that
gathers the shards (to rank 0's CPU memory), so the file always holds whole, unsharded tensors keyed
by parameter name (the optimiser state too, by name rather than by position). A checkpoint written
by FSDP2 therefore resumes under DDP or a single process and vice versa, at any world size, and
``checkpoint.pt["model"]`` loads into a plain ``LatentMIM`` with ``load_state_dict``. The price is
that rank 0 holds the whole state once per save: 12 bytes per trainable parameter (fp32 weights and
two AdamW moments), ~4.3 GB for Large's 360 M — sharded DCP files would only pay off far beyond that.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.tensor import DTensor

CHECKPOINT_NAME = "checkpoint.pt"
#: Bumped when the layout changes; ``olmoearth.checkpoint/2`` keys the optimiser state by parameter name.
CHECKPOINT_FORMAT = "olmoearth.checkpoint/2"


@dataclass
class TrainState:
    """Where training stands after ``step`` optimiser steps."""

    step: int = 0
    epoch: int = 0
    next_batch: int = 0  # index of the next global batch within ``epoch``

    def advance(self, *, num_batches: int) -> None:
        """One optimiser step done on batch ``next_batch`` of an epoch of ``num_batches`` batches."""
        self.step += 1
        self.next_batch += 1
        if self.next_batch >= num_batches:
            self.epoch, self.next_batch = self.epoch + 1, 0


def _gather_options() -> StateDictOptions:
    # Under a process group, cpu_offload=True gathers to rank 0 only (the other ranks get {}).
    return StateDictOptions(full_state_dict=True, cpu_offload=dist.is_initialized())


def full_model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Whole (unsharded) weights of ``model`` keyed as in a plain ``model.state_dict()``.

    Collective under FSDP2 (every rank must call); the result is complete on rank 0 (CPU tensors
    under a process group) and empty on the other ranks.
    """
    return get_model_state_dict(model, options=_gather_options())


def save_checkpoint(
    run_dir: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: TrainState,
    config: dict,
    is_main: bool = True,
) -> Path | None:
    """Write ``run_dir/checkpoint.pt`` from rank 0 (``is_main``); returns its path there, else None.

    Every rank must call this: under FSDP2 gathering the shards is a collective.
    """
    model_state = get_model_state_dict(model, options=_gather_options())
    optim_state = get_optimizer_state_dict(model, optimizer, options=_gather_options())
    if not is_main:
        return None
    path = Path(run_dir) / CHECKPOINT_NAME
    tmp = path.with_suffix(".pt.tmp")
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "model": model_state,
            "optimizer": optim_state,
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
    run_dir: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> TrainState | None:
    """Restore model, optimiser and torch RNG from ``run_dir``; None when there is no checkpoint.

    Every rank reads the file (memory-mapped) and keeps its own shard under FSDP2, so call it on
    every rank, after wrapping the model and creating the optimiser and before the first step.
    """
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.exists():
        return None
    ckpt: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    fmt = ckpt.get("format")
    if fmt is None:  # written before FSDP2 support: plain state dicts, optimiser state by position
        if any(isinstance(p, DTensor) for p in model.parameters()):
            raise ValueError(f"{path} predates FSDP2 support; resume it once with parallel=ddp")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
    elif fmt == CHECKPOINT_FORMAT:
        options = StateDictOptions(full_state_dict=True)
        set_model_state_dict(model, ckpt["model"], options=options)
        set_optimizer_state_dict(model, optimizer, ckpt["optimizer"], options=options)
    else:
        raise ValueError(
            f"{path} has checkpoint format {fmt!r}, this trainer reads {CHECKPOINT_FORMAT!r}; "
            "start a fresh run (resume=false or another run_dir)"
        )
    torch.set_rng_state(ckpt["torch_rng"].cpu())
    return TrainState(step=int(ckpt["step"]), epoch=int(ckpt["epoch"]), next_batch=int(ckpt["next_batch"]))
