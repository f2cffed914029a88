"""The per-step metrics record (one JSONL line per optimiser step) and the MFU estimate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

import torch

from olmoearth_model.batch import Batch
from olmoearth_model.budget import token_slots
from olmoearth_model.nn.latent_mim import LatentMIM


def step_record(
    *,
    step: int,
    epoch: int,
    parts: dict[str, float],
    lr: float,
    grad_norm: float,
    batch: Batch,
    specs: list,
    elapsed: float,
    data_wait: float,
    world_size: int,
) -> dict:
    """Loss parts, lr, grad norm, shape of the batch, throughput (whole job) and the data-wait share.

    ``elapsed`` and ``data_wait`` are seconds of this step (wall clock) and of waiting for its batch.
    """
    h = batch.data[specs[0].name].shape[1] // batch.patch_size
    t = batch.timestamps.shape[1]
    samples = batch.batch_size * world_size
    return {
        "step": step,
        "epoch": epoch,
        **parts,
        "lr": lr,
        "grad_norm": grad_norm,
        "patch_size": batch.patch_size,
        "crop_tokens": h,
        "timesteps": t,
        "samples_per_s": samples / elapsed,
        "tokens_per_s": samples * token_slots(h=h, timesteps=t, specs=specs) / elapsed,
        "data_wait_share": data_wait / elapsed,
    }


def open_metrics(path: Path, *, keep_below: int) -> IO[str]:
    """Open ``metrics.jsonl`` for appending, keeping only rows of steps before ``keep_below`` (resume)."""
    if keep_below > 0 and path.exists():
        rows = [line for line in path.read_text().splitlines() if line.strip()]
        kept = []
        for line in rows:
            try:
                if json.loads(line)["step"] < keep_below:
                    kept.append(line)
            except json.JSONDecodeError:  # a line cut by a kill -9
                break
        path.write_text("".join(line + "\n" for line in kept))
        return path.open("a")
    return path.open("w")


#: Dense bf16 peak FLOP/s per GPU, by device-name substring (for MFU).
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}


def model_flops_utilisation(
    record: dict, *, model: LatentMIM, device: torch.device, world_size: int
) -> float | None:
    """Achieved / peak FLOP/s: 6·N FLOPs per token slot (N = trainable parameters), attention ignored.

    A lower bound (only ~half the slots reach the encoder and half the decoder per view, two views run);
    good for tracking, not for comparing with other models. None on a GPU not in ``PEAK_BF16_FLOPS``.
    """
    name = torch.cuda.get_device_name(device)
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)
    if peak is None:
        return None
    params = sum(p.numel() for p in model.trainable_parameters())  # global counts, sharded or not
    return 6 * params * record["tokens_per_s"] / world_size / peak


def console_line(record: dict) -> str:
    """One human-readable line of a step record (the console view of ``metrics.jsonl``)."""
    line = (
        f"step {record['step']:>6d}  loss {record['loss']:.4f}  lr {record['lr']:.2e}  "
        f"grad {record['grad_norm']:.3f}  {record['samples_per_s']:.1f} samples/s  "
        f"data wait {100 * record['data_wait_share']:.0f}%"
    )
    if "probe_loss" in record:
        line += f"  probe {record['probe_loss']:.4f}"
    return line
