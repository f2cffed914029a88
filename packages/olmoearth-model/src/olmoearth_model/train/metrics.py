"""The metrics record (one JSONL line per logged step), the FLOP count of a step and the console line."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import torch

from olmoearth_model.batch import Batch, MaskValue
from olmoearth_model.budget import token_slots
from olmoearth_model.nn.latent_mim import LatentMIM


@dataclass(frozen=True)
class FlopModel:
    """What the FLOP count of a step needs from the model: block weights and widths of both stacks."""

    encoder_block_params: int
    encoder_dim: int
    encoder_depth: int
    decoder_block_params: int
    decoder_dim: int
    decoder_depth: int

    @classmethod
    def of(cls, model: LatentMIM) -> FlopModel:
        size = model.config.size
        return cls(
            encoder_block_params=sum(p.numel() for p in model.encoder.blocks.parameters()),
            encoder_dim=size.encoder_dim,
            encoder_depth=size.encoder_depth,
            decoder_block_params=sum(p.numel() for p in model.decoder.blocks.parameters()),
            decoder_dim=size.decoder_dim,
            decoder_depth=size.decoder_depth,
        )


def step_flops(*, batch: Batch, flop_model: FlopModel) -> float:
    """Training FLOPs (forward + backward = 3 × forward) of one rank's batch, from its masks.

    Per view and sample, with ``e`` encoded and ``d`` decoded tokens (the lengths actually attended,
    no padding): encoder ``2·P_enc·e + 4·L_enc·D_enc·e²`` (weights, then QKᵀ and AV); decoder
    ``2·P_dec·d`` for the query path, ``4·L_dec·D_dec²·e`` for the K/V projections of the context and
    ``4·L_dec·D_dec·d·e`` for cross-attention (its query/output/MLP weights are counted in ``P_dec``,
    so the K/V weights are counted twice for the queries: a small overestimate). Patch embeddings,
    the frozen target and the losses are left out (< 2 % for Base). Read from the masks on the host
    (call it before the batch moves to the GPU), so counting costs no device sync.
    """
    f = flop_model
    total = 0.0
    for masks in (batch.masks_a, batch.masks_b):
        enc = sum((m == MaskValue.ONLINE_ENCODER).flatten(1).sum(1) for m in masks.values()).double()
        dec = sum((m == MaskValue.DECODER).flatten(1).sum(1) for m in masks.values()).double()
        fwd = (
            2 * f.encoder_block_params * enc
            + 4 * f.encoder_depth * f.encoder_dim * enc**2
            + 2 * f.decoder_block_params * dec
            + 4 * f.decoder_depth * f.decoder_dim**2 * enc
            + 4 * f.decoder_depth * f.decoder_dim * dec * enc
        )
        total += 3 * float(fwd.sum())
    return total


class Window:
    """Host-side sums over the steps since the last record: what throughput, MFU and ETA divide.

    Everything is read from the host copy of each batch (its masks and shapes), never from device
    tensors, so keeping the window costs no device sync.
    """

    def __init__(self, *, specs: list, flop_model: FlopModel) -> None:
        self.specs, self.flop_model = specs, flop_model
        self.start = time.perf_counter()
        self.sums = {"steps": 0, "samples": 0, "tokens": 0, "flops": 0.0, "data_wait": 0.0, "seconds": 0.0}

    def add(self, batch: Batch, *, data_wait: float) -> None:
        """Count one step on ``batch`` (this rank's share, on the host) that waited ``data_wait`` s for it."""
        h = batch.data[self.specs[0].name].shape[1] // batch.patch_size
        slots = token_slots(h=h, timesteps=batch.timestamps.shape[1], specs=self.specs)
        self.sums["steps"] += 1
        self.sums["samples"] += batch.batch_size
        self.sums["tokens"] += batch.batch_size * slots
        self.sums["flops"] += step_flops(batch=batch, flop_model=self.flop_model)
        self.sums["data_wait"] += data_wait

    def close(self) -> dict[str, float]:
        """The sums, with ``seconds`` of wall clock since the window opened."""
        return {**self.sums, "seconds": time.perf_counter() - self.start}


def step_record(
    *,
    step: int,
    epoch: int,
    parts: dict[str, float],
    lr: float,
    grad_norm: float,
    batch: Batch,
    specs: list,
    window: dict[str, float],
    world_size: int,
    peak_flops: float | None,
    steps_left: int,
) -> dict:
    """Loss parts and lr of step ``step``, shape of its batch, and throughput over the log window.

    ``window`` sums the steps since the previous record: ``steps``, ``seconds`` (wall clock),
    ``data_wait`` (seconds waiting for batches), ``samples``, ``tokens`` (token slots) and ``flops``
    of this rank. Throughput is of the whole job (``world_size`` ranks); ``mfu`` is this rank's
    FLOP/s over ``peak_flops`` (absent without a peak); ``eta_s`` is ``steps_left`` at the window's pace.
    """
    h = batch.data[specs[0].name].shape[1] // batch.patch_size
    t = batch.timestamps.shape[1]
    seconds = max(window["seconds"], 1e-9)
    record = {
        "step": step,
        "epoch": epoch,
        **parts,
        "lr": lr,
        "grad_norm": grad_norm,
        "patch_size": batch.patch_size,
        "crop_tokens": h,
        "timesteps": t,
        "samples_per_s": window["samples"] * world_size / seconds,
        "tokens_per_s": window["tokens"] * world_size / seconds,
        "flops_per_s": window["flops"] * world_size / seconds,
        "data_wait_share": window["data_wait"] / seconds,
        "eta_s": steps_left * seconds / max(1, window["steps"]),
    }
    if peak_flops:
        record["mfu"] = window["flops"] / seconds / peak_flops
    return record


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


def peak_flops(device: torch.device) -> float | None:
    """Dense bf16 peak FLOP/s of ``device`` (a GPU in :data:`PEAK_BF16_FLOPS`), else None."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


#: Keys of the in-loop evaluation's results (``evaluate_in_loop``) shown on the console line.
EVALUATION_PREFIXES = ("val_", "probe/", "knn/", "eval/")


def console_step(step: int, total: int | None) -> str:
    """``step 12/300``: steps done (``metrics.jsonl``'s 0-based ``step`` + 1) out of ``total``."""
    return f"step {step + 1:>6d}" + ("" if total is None else f"/{total}")


def console_line(record: dict, *, total: int | None = None) -> str:
    """One human-readable line of a step record (the console view of ``metrics.jsonl``).

    ``total``: the run's ``schedule.max_steps``, shown after the step count when given.
    """
    line = (
        f"{console_step(record['step'], total)}  loss {record['loss']:.4f}  lr {record['lr']:.2e}  "
        f"grad {record['grad_norm']:.3f}  {record['samples_per_s']:.1f} samples/s  "
        f"{record['tokens_per_s']:.3g} tok/s"
    )
    if "mfu" in record:
        line += f"  MFU {100 * record['mfu']:.1f}%"
    line += f"  data wait {100 * record['data_wait_share']:.0f}%  left {_duration(record['eta_s'])}"
    if record.get("skipped_steps"):
        line += f"  skipped {record['skipped_steps']:.0f} non-finite"
    if "probe_loss" in record:
        line += f"  probe {record['probe_loss']:.4f}"
    return line + (evaluation_text(record) or "")


def evaluation_text(record: dict) -> str | None:
    """``"  eval val_loss 1.23 probe/worldcover/acc 0.4 …"`` when ``record`` holds evaluation results."""
    evaluated = {k: v for k, v in record.items() if k.startswith(EVALUATION_PREFIXES) and k != "eval/seconds"}
    if not evaluated:
        return None
    return "  eval " + " ".join(f"{k} {v:.4g}" for k, v in evaluated.items())


def _duration(seconds: float) -> str:
    """``1d03h``, ``3h05m``, ``4m07s`` or ``12s``."""
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"
