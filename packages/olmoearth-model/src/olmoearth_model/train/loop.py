"""The training loop: one readable loop over batches, microbatches and optimiser steps."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from olmoearth_model.batch import Batch
from olmoearth_model.data.dataset import BatchDataset, LoaderConfig, make_loader
from olmoearth_model.data.reader import CorpusReader
from olmoearth_model.losses import LossConfig
from olmoearth_model.nn.latent_mim import LatentMIM
from olmoearth_model.nn.sizes import ModelConfig, get_size
from olmoearth_model.objective import latent_mim_objective
from olmoearth_model.train.checkpoint import (
    TrainState,
    full_model_state,
    load_checkpoint,
    save_checkpoint,
)
from olmoearth_model.train.config import TrainConfig
from olmoearth_model.train.distributed import (
    DistEnv,
    any_rank,
    init_distributed,
    rank_divergence,
    shutdown_distributed,
)
from olmoearth_model.train.export import export_release
from olmoearth_model.train.metrics import console_line, model_flops_utilisation, open_metrics, step_record
from olmoearth_model.train.monitor import probe_metrics
from olmoearth_model.train.parallel import Parallel, clip_gradients, wrap_objective
from olmoearth_model.train.run_dir import check_resume, start_run
from olmoearth_model.train.schedule import learning_rate
from olmoearth_model.train.tracking import Trackers, check_trackers

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

    A run directory holding a checkpoint of other settings (model, corpus, modalities, batch, …) is
    refused before anything is written (:mod:`~olmoearth_model.train.run_dir`); ``resume=false``
    starts over. Writes ``config.yaml`` and ``run.json``, ``metrics.jsonl`` (one JSON line per step,
    rank 0; also to TensorBoard/W&B when ``config.metrics`` turns them on), ``checkpoint.pt`` every
    ``checkpoint_every`` steps and on SIGTERM, and at the end ``model.pt`` and a release export.
    ``config.parallel`` picks DDP or FSDP2 when there is more than one process.
    """
    env = DistEnv.from_environment()
    check_resume(config)  # before anything is written: a changed run is refused, config.yaml kept
    device = pick_device(config.device, local_rank=env.local_rank)
    check_trackers(config.metrics)
    init_distributed(env, device=device)
    run_dir = Path(config.run_dir)
    if env.is_main:
        start_run(config)  # config.yaml + run.json; a new run moves an old checkpoint aside
    model = build_model_for_corpus(config).to(device)
    model.train()
    loss_config = LossConfig(contrastive=config.contrastive, patch_loss=config.patch_loss)
    par = wrap_objective(
        ObjectiveModule(model, loss_config=loss_config),
        parallel=config.parallel,
        env=env,
        device=device,
        compile=config.compile,
    )
    opt_cfg = config.optim
    # Built after wrapping: FSDP2 replaces the parameters with their DTensor shards.
    optimizer = torch.optim.AdamW(
        model.trainable_parameters(),
        lr=opt_cfg.lr,
        betas=opt_cfg.betas,
        eps=opt_cfg.eps,
        weight_decay=opt_cfg.weight_decay,
        fused=device.type == "cuda",
    )
    state = load_checkpoint(run_dir, model=model, optimizer=optimizer) if config.resume else None
    state = state or TrainState()
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
    metrics = open_metrics(run_dir / "metrics.jsonl", keep_below=state.step) if env.is_main else None
    trackers = None
    stop = _StopRequest()
    failed = True
    try:
        if env.is_main:
            trackers = Trackers(
                config=config.metrics, run_dir=run_dir, run_config=config.to_dict(), start_step=state.step
            )
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
                parts = _accumulate(par, batch, size=config.microbatch, autocast=autocast)
                grad_norm = clip_gradients(model.trainable_parameters(), max_norm=opt_cfg.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                model.update_target()
                batch_epoch = state.epoch
                state.step += 1
                state.next_batch += 1
                if state.next_batch >= n_batches:
                    state.epoch, state.next_batch = state.epoch + 1, 0
                elapsed = time.perf_counter() - step_start + data_wait
                # Replicated weights only: FSDP2 ranks hold different shards by design.
                divergence = None
                if par.mode == "ddp":
                    divergence = rank_divergence(model.trainable_parameters(), env=env)
                elif par.mode == "single":
                    divergence = 0.0
                probe_due = (state.step - 1) % config.probe_every == 0 or state.step == config.max_steps
                probed = {}
                if probe_due and (par.sharded or env.is_main):  # a collective under FSDP2
                    with autocast:
                        probed = probe_metrics(objective=par.objective, model=model, probe=probe)
                    par.reshard()
                if metrics is not None:
                    record = step_record(
                        step=state.step - 1,
                        epoch=batch_epoch,
                        parts=parts,
                        lr=lr,
                        grad_norm=grad_norm,
                        batch=batch,
                        specs=specs,
                        elapsed=elapsed,
                        data_wait=data_wait,
                        world_size=env.world_size,
                    )
                    if divergence is not None:
                        record["rank_divergence"] = divergence
                    record.update(probed)
                    if device.type == "cuda":
                        record["mfu"] = model_flops_utilisation(
                            record, model=model, device=device, world_size=env.world_size
                        )
                        record["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
                    metrics.write(json.dumps(record) + "\n")
                    metrics.flush()
                    trackers.log(record)
                    if (state.step - 1) % config.log_every == 0 or state.step >= config.max_steps:
                        print(console_line(record), file=sys.stderr, flush=True)
                stopping = any_rank(stop.requested, env=env, device=device)
                due = stopping or state.step % config.checkpoint_every == 0 or state.step >= config.max_steps
                if due:  # every rank: gathering FSDP2 shards is a collective
                    save_checkpoint(
                        run_dir,
                        model=model,
                        optimizer=optimizer,
                        state=state,
                        config=config.to_dict(),
                        is_main=env.is_main,
                    )
                    if trackers is not None:
                        trackers.flush()
                if stopping:
                    log.warning(
                        "SIGTERM: checkpointed at step %d; rerun the same command to resume", state.step
                    )
                    failed = False
                    return run_dir
                if state.step >= config.max_steps:
                    break
                wait_start = time.perf_counter()
        weights = full_model_state(model)  # every rank: a collective under FSDP2
        if env.is_main:
            plain = unsharded_model(model.config, weights)
            torch.save(
                {"model": plain.state_dict(), "step": state.step, "config": config.to_dict()},
                run_dir / "model.pt",
            )
            export_release(run_dir / "release", model=plain, norm_stats=probe_ds.reader.norm_stats())
        failed = False
    finally:
        stop.restore()
        if metrics is not None:
            metrics.close()
        if trackers is not None:
            trackers.close(failed=failed)
        shutdown_distributed()
    return run_dir


class ObjectiveModule(torch.nn.Module):
    """One module whose forward is the whole objective: DDP sees one forward per backward, and under
    FSDP2 it is the root whose forward gathers every non-block weight the objective uses."""

    def __init__(self, model: LatentMIM, *, loss_config: LossConfig) -> None:
        super().__init__()
        self.model = model
        self.loss_config = loss_config

    def forward(self, batch: Batch, *, probe: bool = False) -> dict[str, torch.Tensor]:
        """fp32 scalars ``loss``, ``patch_a``, ``patch_b``, ``contrastive``; with ``probe`` also view
        a's pooled ``[B, D]`` embeddings as ``pooled`` (one more encoder pass, for the collapse monitor)."""
        out = latent_mim_objective(model=self.model, batch=batch, config=self.loss_config)
        result = {
            "loss": out.loss,
            "patch_a": out.patch_a,
            "patch_b": out.patch_b,
            "contrastive": out.contrastive,
        }
        if probe:
            result["pooled"] = self.model.encoder(
                data=batch.data, masks=batch.masks_a, timestamps=batch.timestamps, patch_size=batch.patch_size
            ).pooled
        return result


def _accumulate(par: Parallel, batch: Batch, *, size: int, autocast) -> dict[str, float]:
    """Forward/backward every microbatch, gradients averaged over them (synced on the last only)."""
    micro = split_batch(batch, size=size)
    parts = {"loss": 0.0, "patch_a": 0.0, "patch_b": 0.0, "contrastive": 0.0}
    for i, mb in enumerate(micro):
        with par.gradient_sync(i == len(micro) - 1):
            with autocast:
                out = par.step_module(mb)
            (out["loss"] / len(micro)).backward()
        for k in parts:
            parts[k] += float(out[k].detach()) / len(micro)
    return parts


def unsharded_model(model_config: ModelConfig, weights: dict[str, torch.Tensor]) -> LatentMIM:
    """A plain CPU ``LatentMIM`` holding ``weights`` (a full state dict, e.g. gathered from FSDP2 shards)."""
    with torch.device("meta"):  # no random init: every tensor is replaced below
        plain = LatentMIM(config=model_config)
    plain.load_state_dict({k: v.detach().cpu() for k, v in weights.items()}, strict=True, assign=True)
    return plain
