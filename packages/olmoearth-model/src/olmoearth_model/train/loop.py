"""The training loop, top to bottom: set up, then for each batch one step, log, probe, sync, checkpoint.

The step itself (:mod:`~olmoearth_model.train.step`) keeps everything on the device; the host reads
tensors only when a record is due (``metrics.log_every``) and at the rank check
(``parallel.sync_every``: one all-reduce carrying the stop signal and the DDP weight checksum).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from olmoearth_model.data.dataset import BatchDataset
from olmoearth_model.train.build import (
    build_model,
    build_model_for_corpus,
    fit_to_machine,
    loader_config,
    pick_device,
    unsharded_model,
)
from olmoearth_model.train.checkpoint import full_model_state
from olmoearth_model.train.checkpointer import Checkpointer
from olmoearth_model.train.config import TrainConfig
from olmoearth_model.train.distributed import DistEnv, init_distributed, shutdown_distributed, sync_ranks
from olmoearth_model.train.export import export_release
from olmoearth_model.train.feed import feed
from olmoearth_model.train.metrics import FlopModel, Window, peak_flops, step_record
from olmoearth_model.train.parallel import Parallel, wrap_objective
from olmoearth_model.train.probe import Probe
from olmoearth_model.train.run_dir import check_resume, start_run
from olmoearth_model.train.run_log import RunLog
from olmoearth_model.train.schedule import learning_rate
from olmoearth_model.train.step import (
    PARTS,
    NonFiniteGuard,
    ObjectiveModule,
    accumulate,
    build_optimizer,
    optimizer_step,
    split_batch,
)
from olmoearth_model.train.tracking import check_trackers

__all__ = [
    "NonFiniteLossError", "ObjectiveModule", "TrainOutcome", "build_model_for_corpus", "pick_device",
    "split_batch", "train", "train_run",
]  # fmt: skip

log = logging.getLogger(__name__)


class NonFiniteLossError(ValueError):
    """``optim.max_nonfinite_steps`` steps in a row had a non-finite loss or gradient norm."""


@dataclass(frozen=True)
class TrainOutcome:
    """Where the run is, and whether it reached ``schedule.max_steps`` (False: stopped by SIGTERM)."""

    run_dir: Path
    finished: bool


def train(config: TrainConfig) -> Path:
    """:func:`train_run`'s run directory (finished, or checkpointed after a SIGTERM)."""
    return train_run(config).run_dir


def train_run(config: TrainConfig) -> TrainOutcome:
    """Train (or resume) until ``config.schedule.max_steps`` optimiser steps, alone or under ``torchrun``.

    A run directory holding a checkpoint of other settings is refused before anything is written
    (:mod:`~olmoearth_model.train.run_dir`); ``checkpoint.resume=false`` starts over. Writes
    ``config.yaml`` and ``run.json``, ``metrics.jsonl`` (rank 0, one line per ``metrics.log_every``
    steps; also TensorBoard/W&B when ``config.metrics`` turns them on), ``checkpoint.pt`` (every
    ``checkpoint.every_steps``, on SIGTERM, at the end) and finally ``model.pt`` and a release export.

    Raises:
        NonFiniteLossError: ``optim.max_nonfinite_steps`` skipped (non-finite) steps in a row.
        ConfigError: a config that cannot run here (e.g. a GPU batch on CPU).
    """
    env = DistEnv.from_environment()
    check_resume(config)  # before anything is written: a changed run is refused, config.yaml kept
    device = pick_device(config.parallel.device, local_rank=env.local_rank)
    config = fit_to_machine(config, device=device, env=env)
    check_trackers(config.metrics)
    init_distributed(env, device=device)
    run_dir = Path(config.run_dir)
    if env.is_main:
        start_run(config)  # config.yaml + run.json; a new run moves an old checkpoint aside

    loader = loader_config(config.data, masking=config.masking)
    probe_data = BatchDataset(loader, epoch=0)
    specs, num_batches = probe_data.reader.specs, probe_data.num_batches()
    if num_batches == 0:
        raise ValueError(
            f"corpus {config.data.corpus} (split {config.data.split}) has fewer complete samples than one "
            f"global batch (data.global_batch={config.data.global_batch})"
        )
    model = build_model(config.model, specs=specs).to(device).train()
    par = wrap_objective(
        ObjectiveModule(model, loss_config=config.loss), parallel=config.parallel.mode, env=env,
        device=device, compile=config.parallel.compile,
    )  # fmt: skip
    # Built after wrapping: FSDP2 replaces the parameters with their DTensor shards.
    optimizer = build_optimizer(list(model.trainable_parameters()), config=config.optim)
    checkpointer = Checkpointer(run_dir=run_dir, config=config.checkpoint, run_config=config.to_dict(),
                                is_main=env.is_main)  # fmt: skip
    state = checkpointer.restore(model=model, optimizer=optimizer)
    probe = Probe(batch=probe_data.batch(0), every=config.metrics.probe_every, evaluation=config.evaluation,
                  corpus=config.data.corpus, device=device, is_main=env.is_main)  # fmt: skip
    autocast = torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    peak = peak_flops(device)
    guard = NonFiniteGuard(device=device)
    sched, max_steps = config.schedule, config.schedule.max_steps
    run_log = None
    failed = True
    try:
        run_log = RunLog(run_dir=run_dir, config=config, start_step=state.step) if env.is_main else None
        window = Window(specs=specs, flop_model=FlopModel.of(model))
        batches = feed(
            loader, state=state, num_batches=num_batches, env=env, num_workers=config.data.num_workers
        )
        while state.step < max_steps:
            fed = next(batches)
            batch = fed.batch.to(device, non_blocking=True)
            lr = learning_rate(
                step=state.step, base_lr=config.optim.lr, warmup_steps=sched.warmup_steps,
                max_steps=max_steps, alpha_f=sched.alpha_f,
            )  # fmt: skip
            for group in optimizer.param_groups:
                group["lr"] = lr
            parts = accumulate(
                par, batch, microbatch=config.data.microbatch, loss_config=config.loss, autocast=autocast
            )
            grad_norm = optimizer_step(
                par=par, model=model, optimizer=optimizer, guard=guard, parts=parts,
                max_grad_norm=config.optim.max_grad_norm,
            )  # fmt: skip
            state.advance(num_batches=num_batches)
            window.add(fed.batch, data_wait=fed.data_wait)

            probed = probe(step=state.step, max_steps=max_steps, par=par, model=model, autocast=autocast)
            due_log = (state.step - 1) % config.metrics.log_every == 0 or state.step >= max_steps
            due_sync = state.step % config.parallel.sync_every == 0 or state.step >= max_steps
            if due_log or due_sync:
                _check_finite(guard, step=state.step, limit=config.optim.max_nonfinite_steps)
            stopping, divergence = _rank_check(
                checkpointer.stop_requested, due=due_sync, par=par, model=model, env=env, device=device
            )
            if due_log:
                if run_log is not None:
                    record = step_record(
                        step=state.step - 1, epoch=fed.epoch, parts={k: float(parts[k]) for k in PARTS},
                        lr=lr, grad_norm=float(grad_norm), batch=fed.batch, specs=specs,
                        window=window.close(),
                        world_size=env.world_size, peak_flops=peak, steps_left=max_steps - state.step,
                    )  # fmt: skip
                    record["skipped_steps"] = float(guard.skipped)
                    if divergence is not None:
                        record["rank_divergence"] = divergence
                    if device.type == "cuda":
                        record["peak_mem_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
                    run_log.write({**record, **probed})
                guard.reset()
                window = Window(specs=specs, flop_model=window.flop_model)
            elif probed and run_log is not None:
                run_log.write({"step": state.step - 1, **probed}, console=False)
            if checkpointer.due(step=state.step, max_steps=max_steps, stopping=stopping):
                checkpointer.save(model=model, optimizer=optimizer, state=state)
                if run_log is not None:
                    run_log.flush()
            if stopping:
                failed = False
                return TrainOutcome(run_dir=run_dir, finished=False)
        weights = full_model_state(model)  # every rank: a collective under FSDP2
        if env.is_main:
            plain = unsharded_model(model.config, weights)
            torch.save({"model": plain.state_dict(), "step": state.step, "config": config.to_dict()},
                       run_dir / "model.pt")  # fmt: skip
            export_release(run_dir / "release", model=plain, norm_stats=probe_data.reader.norm_stats())
        failed = False
    finally:
        checkpointer.close()
        if run_log is not None:
            run_log.close(failed=failed)
        shutdown_distributed()
    return TrainOutcome(run_dir=run_dir, finished=True)


def _rank_check(
    stop: bool, *, due: bool, par: Parallel, model: torch.nn.Module, env: DistEnv, device: torch.device
) -> tuple[bool, float | None]:
    """``(stop now, DDP weight divergence)``: alone, a SIGTERM stops at once (divergence 0.0); under
    torchrun the ranks agree on both in one all-reduce, on ``due`` steps only (else ``(False, None)``)."""
    if not env.enabled:
        return stop, 0.0
    if not due:
        return False, None
    replicated = list(model.trainable_parameters()) if par.mode == "ddp" else None
    return sync_ranks(stop=stop, parameters=replicated, env=env, device=device)


def _check_finite(guard: NonFiniteGuard, *, step: int, limit: int) -> None:
    """Read the guard (one host sync): warn about skipped steps, stop after ``limit`` in a row."""
    worst, skipped = int(guard.worst), int(guard.skipped)
    if skipped:
        log.warning("%d step(s) up to step %d had a non-finite loss or gradient norm: update skipped",
                    skipped, step - 1)  # fmt: skip
    if worst >= limit:
        raise NonFiniteLossError(
            f"stopping at step {step - 1}: {worst} steps in a row had a non-finite loss or gradient norm "
            f"(limit optim.max_nonfinite_steps={limit}); their updates were skipped. Lower optim.lr or "
            f"check the data, then rerun: it resumes from the last checkpoint"
        )
