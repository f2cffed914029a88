"""The training loop: one readable loop over batches, microbatches and optimiser steps."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import torch

from olmoearth_model.batch import Batch
from olmoearth_model.budget import token_slots
from olmoearth_model.data.dataset import BatchDataset, LoaderConfig, make_loader
from olmoearth_model.data.reader import CorpusReader
from olmoearth_model.losses import LossConfig
from olmoearth_model.nn.latent_mim import LatentMIM
from olmoearth_model.nn.sizes import ModelConfig, get_size
from olmoearth_model.objective import latent_mim_objective
from olmoearth_model.train.config import TrainConfig
from olmoearth_model.train.schedule import learning_rate

log = logging.getLogger(__name__)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
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
    return LatentMIM(config=ModelConfig(size=get_size(config.size), modalities=specs, target=config.target))


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


@torch.no_grad()
def probe_loss(model: LatentMIM, probe: Batch, *, loss_config: LossConfig) -> float:
    """Loss on the fixed probe batch in eval mode (no DropPath): comparable across steps."""
    was_training = model.training
    model.eval()
    try:
        return float(latent_mim_objective(model=model, batch=probe, config=loss_config).loss)
    finally:
        model.train(was_training)


def train(config: TrainConfig) -> Path:
    """Train ``config.max_steps`` optimiser steps.

    Writes ``config.yaml``, ``metrics.jsonl`` (one JSON line per step) and ``model.pt`` to the run dir.
    """
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config.save(run_dir / "config.yaml")
    device = pick_device(config.device)
    model = build_model_for_corpus(config).to(device)
    model.train()
    opt_cfg = config.optim
    optimizer = torch.optim.AdamW(
        model.trainable_parameters(), lr=opt_cfg.lr, betas=opt_cfg.betas, eps=opt_cfg.eps,
        weight_decay=opt_cfg.weight_decay, fused=device.type == "cuda",
    )  # fmt: skip
    loss_config = LossConfig(contrastive=config.contrastive)
    lcfg = loader_config(config)
    probe_ds = BatchDataset(replace(lcfg, num_workers=0), epoch=0)
    if probe_ds.num_batches() == 0:
        raise ValueError(
            f"corpus {config.corpus} has fewer complete samples than one global batch ({config.global_batch})"
        )
    probe = probe_ds.batch(0)
    probe = probe.to(device)
    specs = probe_ds.reader.specs
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    step, epoch = 0, 0
    metrics_path = run_dir / "metrics.jsonl"
    with metrics_path.open("w") as metrics:
        while step < config.max_steps:
            loader = make_loader(BatchDataset(lcfg, epoch=epoch), num_workers=config.num_workers)
            wait_start = time.perf_counter()
            for batch in loader:
                if step >= config.max_steps:
                    break
                data_wait = time.perf_counter() - wait_start
                step_start = time.perf_counter()
                batch = batch.to(device, non_blocking=True)
                lr = learning_rate(step=step, base_lr=opt_cfg.lr, warmup_steps=opt_cfg.warmup_steps,
                                   max_steps=config.max_steps, alpha_f=opt_cfg.alpha_f)  # fmt: skip
                for group in optimizer.param_groups:
                    group["lr"] = lr
                micro = split_batch(batch, size=config.microbatch)
                parts = {"loss": 0.0, "patch_a": 0.0, "patch_b": 0.0, "contrastive": 0.0}
                for mb in micro:
                    with autocast:
                        out = latent_mim_objective(model=model, batch=mb, config=loss_config)
                    (out.loss / len(micro)).backward()
                    for k in parts:
                        parts[k] += float(getattr(out, k).detach()) / len(micro)
                grad_norm = torch.nn.utils.clip_grad_norm_(
                    model.trainable_parameters(), opt_cfg.max_grad_norm
                )
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                model.update_target()
                elapsed = time.perf_counter() - step_start + data_wait
                h = batch.data[specs[0].name].shape[1] // batch.patch_size
                t = batch.timestamps.shape[1]
                record = {
                    "step": step, "epoch": epoch, **parts, "lr": lr, "grad_norm": float(grad_norm),
                    "patch_size": batch.patch_size, "crop_tokens": h, "timesteps": t,
                    "samples_per_s": batch.batch_size / elapsed,
                    "tokens_per_s": batch.batch_size * token_slots(h=h, timesteps=t, specs=specs) / elapsed,
                    "data_wait_share": data_wait / elapsed,
                }  # fmt: skip
                if step % config.probe_every == 0 or step == config.max_steps - 1:
                    record["probe_loss"] = probe_loss(model, probe, loss_config=loss_config)
                if device.type == "cuda":
                    record["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
                if step % config.log_every == 0 or "probe_loss" in record:
                    metrics.write(json.dumps(record) + "\n")
                    metrics.flush()
                step += 1
                wait_start = time.perf_counter()
            epoch += 1
    torch.save({"model": model.state_dict(), "step": step, "config": config.to_dict()}, run_dir / "model.pt")
    return run_dir
