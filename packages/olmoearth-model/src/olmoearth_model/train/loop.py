"""The training loop: one readable loop over batches, microbatches and optimiser steps."""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel

from olmoearth_model.batch import Batch
from olmoearth_model.budget import token_slots
from olmoearth_model.data.dataset import BatchDataset, LoaderConfig, make_loader
from olmoearth_model.data.reader import CorpusReader
from olmoearth_model.losses import LossConfig
from olmoearth_model.nn.latent_mim import LatentMIM
from olmoearth_model.nn.sizes import ModelConfig, get_size
from olmoearth_model.objective import latent_mim_objective
from olmoearth_model.train.checkpoint import TrainState, load_checkpoint, save_checkpoint
from olmoearth_model.train.config import TrainConfig
from olmoearth_model.train.distributed import (
    DistEnv,
    any_rank,
    init_distributed,
    rank_divergence,
    shutdown_distributed,
)
from olmoearth_model.train.export import export_release
from olmoearth_model.train.monitor import probe_metrics
from olmoearth_model.train.schedule import learning_rate

log = logging.getLogger(__name__)


def pick_device(name: str, *, local_rank: int = 0) -> torch.device:
    """``auto``: this rank's GPU when CUDA is available, else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
            return torch.device("cuda", local_rank)
        return torch.device("cpu")
    return torch.device(name)


def split_batch(batch: Batch, *, size: int) -> list[Batch]:
    """Consecutive microbatches of at most ``size`` samples (all share p, h and T)."""
    out = []
    for start in range(0, batch.batch_size, size):
        sl = slice(start, start + size)
        out.append(
            Batch(
                patch_size=batch.patch_size,
                data={k: v[sl] for k, v in batch.data.items()},
                timestamps=batch.timestamps[sl],
                masks_a={k: v[sl] for k, v in batch.masks_a.items()},
                masks_b={k: v[sl] for k, v in batch.masks_b.items()},
                sample_index=batch.sample_index[sl],
            )
        )
    return out


def build_model_for_corpus(config: TrainConfig) -> LatentMIM:
    """The model for the corpus's modality set, initialised from ``config.init_seed``."""
    specs = CorpusReader(config.corpus).specs
    torch.manual_seed(config.init_seed)
    model_config = ModelConfig(
        size=get_size(config.size), modalities=specs, target=config.target, ema_decay=config.ema_decay
    )
    return LatentMIM(config=model_config)


def loader_config(config: TrainConfig) -> LoaderConfig:
    return LoaderConfig(
        corpus=config.corpus,
        global_batch=config.global_batch,
        seed=config.seed,
        masking=config.masking,
        num_workers=config.num_workers,
        token_budget=config.token_budget,
        patch_sizes=config.patch_sizes,
        crop_tokens=config.crop_tokens,
    )


class _StopRequest:
    """Set by SIGTERM: finish the current step, checkpoint, exit cleanly (clusters preempt this way)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self._previous)


def train(config: TrainConfig) -> Path:
    """Train (or resume) until ``config.max_steps`` optimiser steps; works alone or under ``torchrun``.

    Writes ``config.yaml``, ``metrics.jsonl`` (one JSON line per step, rank 0), ``checkpoint.pt`` every
    ``checkpoint_every`` steps and on SIGTERM, and at the end ``model.pt`` and a release export.
    """
    env = DistEnv.from_environment()
    device = pick_device(config.device, local_rank=env.local_rank)
    init_distributed(env, device=device)
    run_dir = Path(config.run_dir)
    if env.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save(run_dir / "config.yaml")
    model = build_model_for_corpus(config).to(device)
    model.train()
    opt_cfg = config.optim
    optimizer = torch.optim.AdamW(
        model.trainable_parameters(),
        lr=opt_cfg.lr,
        betas=opt_cfg.betas,
        eps=opt_cfg.eps,
        weight_decay=opt_cfg.weight_decay,
        fused=device.type == "cuda",
    )
    state = (
        load_checkpoint(run_dir, model=model, optimizer=optimizer, device=device) if config.resume else None
    )
    state = state or TrainState()
    loss_config = LossConfig(contrastive=config.contrastive, patch_loss=config.patch_loss)
    step_module: torch.nn.Module = ObjectiveModule(model, loss_config=loss_config)
    if config.compile:
        step_module = torch.compile(step_module)
    if env.enabled:
        # Map bandsets are decode-only, so their online patch embeddings never get a gradient.
        step_module = DistributedDataParallel(step_module, find_unused_parameters=True)
    lcfg = loader_config(config)
    probe_ds = BatchDataset(replace(lcfg, num_workers=0), epoch=0)
    n_batches = probe_ds.num_batches()
    if n_batches == 0:
        raise ValueError(
            f"corpus {config.corpus} has fewer complete samples than one global batch ({config.global_batch})"
        )
    probe = probe_ds.batch(0).to(device)
    specs = probe_ds.reader.specs
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    metrics = _open_metrics(run_dir / "metrics.jsonl", keep_below=state.step) if env.is_main else None
    stop = _StopRequest()
    try:
        while state.step < config.max_steps:
            dataset = BatchDataset(
                lcfg,
                epoch=state.epoch,
                start_batch=state.next_batch,
                rank=env.rank,
                world_size=env.world_size,
            )
            loader = make_loader(dataset, num_workers=config.num_workers)
            wait_start = time.perf_counter()
            for batch in loader:
                data_wait = time.perf_counter() - wait_start
                step_start = time.perf_counter()
                batch = batch.to(device, non_blocking=True)
                lr = learning_rate(
                    step=state.step,
                    base_lr=opt_cfg.lr,
                    warmup_steps=opt_cfg.warmup_steps,
                    max_steps=config.max_steps,
                    alpha_f=opt_cfg.alpha_f,
                )
                for group in optimizer.param_groups:
                    group["lr"] = lr
                parts = _accumulate(step_module, batch, size=config.microbatch, autocast=autocast)
                grad_norm = torch.nn.utils.clip_grad_norm_(
                    model.trainable_parameters(), opt_cfg.max_grad_norm
                )
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                model.update_target()
                batch_epoch = state.epoch
                state.step += 1
                state.next_batch += 1
                if state.next_batch >= n_batches:
                    state.epoch, state.next_batch = state.epoch + 1, 0
                divergence = rank_divergence(model.trainable_parameters(), env=env) if env.enabled else 0.0
                elapsed = time.perf_counter() - step_start + data_wait
                if metrics is not None:
                    record = _record(
                        state.step - 1,
                        batch_epoch,
                        parts,
                        lr,
                        float(grad_norm),
                        batch,
                        specs,
                        elapsed=elapsed,
                        data_wait=data_wait,
                        world_size=env.world_size,
                    )
                    record["rank_divergence"] = divergence
                    if (state.step - 1) % config.probe_every == 0 or state.step == config.max_steps:
                        record.update(probe_metrics(model, probe, loss_config=loss_config))
                    if device.type == "cuda":
                        record["mfu"] = model_flops_utilisation(
                            record, model=model, device=device, world_size=env.world_size
                        )
                    if device.type == "cuda":
                        record["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
                    metrics.write(json.dumps(record) + "\n")
                    metrics.flush()
                stopping = any_rank(stop.requested, env=env, device=device)
                due = stopping or state.step % config.checkpoint_every == 0 or state.step >= config.max_steps
                if due and env.is_main:
                    save_checkpoint(
                        run_dir, model=model, optimizer=optimizer, state=state, config=config.to_dict()
                    )
                if stopping:
                    log.warning(
                        "SIGTERM: checkpointed at step %d; rerun the same command to resume", state.step
                    )
                    return run_dir
                if state.step >= config.max_steps:
                    break
                wait_start = time.perf_counter()
        if env.is_main:
            torch.save(
                {"model": model.state_dict(), "step": state.step, "config": config.to_dict()},
                run_dir / "model.pt",
            )
            export_release(run_dir / "release", model=model, norm_stats=probe_ds.reader.norm_stats())
    finally:
        stop.restore()
        if metrics is not None:
            metrics.close()
        shutdown_distributed()
    return run_dir


class ObjectiveModule(torch.nn.Module):
    """One module whose forward is the whole objective, so DDP sees one forward per backward."""

    def __init__(self, model: LatentMIM, *, loss_config: LossConfig) -> None:
        super().__init__()
        self.model = model
        self.loss_config = loss_config

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        out = latent_mim_objective(model=self.model, batch=batch, config=self.loss_config)
        return {
            "loss": out.loss,
            "patch_a": out.patch_a,
            "patch_b": out.patch_b,
            "contrastive": out.contrastive,
        }


def _accumulate(step_module: torch.nn.Module, batch: Batch, *, size: int, autocast) -> dict[str, float]:
    """Forward/backward every microbatch, gradients averaged over them (DDP syncs on the last only)."""
    micro = split_batch(batch, size=size)
    parts = {"loss": 0.0, "patch_a": 0.0, "patch_b": 0.0, "contrastive": 0.0}
    is_ddp = isinstance(step_module, DistributedDataParallel)
    for i, mb in enumerate(micro):
        sync = step_module.no_sync() if is_ddp and i < len(micro) - 1 else contextlib.nullcontext()
        with sync:
            with autocast:
                out = step_module(mb)
            (out["loss"] / len(micro)).backward()
        for k in parts:
            parts[k] += float(out[k].detach()) / len(micro)
    return parts


def _record(step, epoch, parts, lr, grad_norm, batch, specs, *, elapsed, data_wait, world_size) -> dict:
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


def _open_metrics(path: Path, *, keep_below: int):
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
    good for tracking, not for comparing with other models.
    """
    name = torch.cuda.get_device_name(device)
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)
    if peak is None:
        return None
    params = sum(p.numel() for p in model.trainable_parameters())
    return 6 * params * record["tokens_per_s"] / world_size / peak
