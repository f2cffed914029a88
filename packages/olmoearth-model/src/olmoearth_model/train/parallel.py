"""How the training step runs across ranks: one process, DDP (replicated weights) or FSDP2 (sharded).

FSDP2 (``torch.distributed.fsdp.fully_shard``) shards every transformer ``Block`` (encoder, decoder
and, for the EMA ablation, the target's) as its own unit, then the objective module as the root, which
holds the rest (patch embeddings, encodings, norms, heads, the Lite target). The root is the
objective, not the ``LatentMIM``: one objective forward runs the model twice (views a and b) plus the
target, and the root's forward is what gathers the non-block weights for all of it. Each block is
gathered before its forward and freed after it, so a rank holds 1/world of the weights, gradients and
AdamW state plus one block at a time. On CUDA the gathered weights are bf16 and gradients are reduced
in fp32 (``MixedPrecisionPolicy``); the fp32 sharded master weights are what the optimiser updates.
On CPU (tests, gloo) everything stays fp32, so FSDP2 and DDP compute the same numbers up to the
summation order of the gradient reduction.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel

from olmoearth_model.nn.attention import Block
from olmoearth_model.train.distributed import DistEnv

log = logging.getLogger(__name__)


@dataclass
class Parallel:
    """The objective as the training step calls it.

    Attributes:
        step_module: what a training forward calls (DDP wrapper, compiled module, or the objective).
        objective: the unwrapped objective module; under FSDP2 it is itself the sharded root (every
            rank must call it together), otherwise a plain module any single rank may call.
        mode: ``"single"`` (one process), ``"ddp"`` or ``"fsdp2"``.
    """

    step_module: nn.Module
    objective: nn.Module
    mode: str

    @property
    def sharded(self) -> bool:
        """True under FSDP2: weights are DTensor shards, and state/probe calls are collectives."""
        return self.mode == "fsdp2"

    def reshard(self) -> None:
        """Free gathered weights: FSDP2 keeps its root gathered after a forward, awaiting a backward
        that an eval (no-grad) forward never runs. A no-op without FSDP2."""
        if self.sharded:
            self.objective.reshard()

    @contextlib.contextmanager
    def gradient_sync(self, enabled: bool) -> Iterator[None]:
        """Reduce gradients across ranks in this backward (``enabled``) or only accumulate them locally."""
        if self.mode == "ddp" and not enabled:
            with self.step_module.no_sync():
                yield
        elif self.mode == "fsdp2":
            self.objective.set_requires_gradient_sync(enabled)
            try:
                yield
            finally:
                self.objective.set_requires_gradient_sync(True)
        else:
            yield


def wrap_objective(
    objective: nn.Module,
    *,
    parallel: str,
    env: DistEnv,
    device: torch.device,
    compile: bool = False,
    bf16_params: bool | None = None,
) -> Parallel:
    """Wrap ``objective`` (already on ``device``) for ``parallel`` = ``"ddp"`` | ``"fsdp2"``.

    With one process there is nothing to replicate or shard and the objective runs as is, whatever
    ``parallel`` says. Under FSDP2 the module's parameters become DTensor shards in place, so build
    the optimiser from ``model.parameters()`` after this call; ``bf16_params`` (default: on CUDA)
    gathers them as bf16 for compute, which needs the forward to run under bf16 autocast.
    """
    if not env.enabled:
        if parallel == "fsdp2":
            log.info("parallel=fsdp2 with one process: nothing to shard, training unwrapped")
        step = torch.compile(objective) if compile else objective
        return Parallel(step_module=step, objective=objective, mode="single")
    if parallel == "ddp":
        step = torch.compile(objective) if compile else objective
        # Map bandsets are decode-only, so their online patch embeddings never get a gradient.
        ddp = DistributedDataParallel(step, find_unused_parameters=True)
        return Parallel(step_module=ddp, objective=objective, mode="ddp")
    if parallel != "fsdp2":
        raise ValueError(f"parallel={parallel!r}; expected 'ddp' or 'fsdp2'")
    shard_fsdp2(objective, device=device, world_size=env.world_size, bf16_params=bf16_params)
    step = torch.compile(objective) if compile else objective
    return Parallel(step_module=step, objective=objective, mode="fsdp2")


def shard_fsdp2(
    objective: nn.Module, *, device: torch.device, world_size: int, bf16_params: bool | None = None
) -> None:
    """``fully_shard`` every ``Block`` inside ``objective``, then ``objective`` itself (the root).

    ``bf16_params`` (default: on CUDA): gathered weights in bf16, gradients reduced in fp32.
    """
    mesh = init_device_mesh(device.type, (world_size,))
    if device.type == "cuda" if bf16_params is None else bf16_params:
        policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    else:
        policy = MixedPrecisionPolicy()  # CPU (gloo, tests): fp32 throughout
    for module in objective.modules():
        if isinstance(module, Block):
            fully_shard(module, mesh=mesh, mp_policy=policy)
    # The root's input is the raw Batch: casting its pixels to bf16 would corrupt the −99999 missing
    # marker and the normalised values, so the root casts nothing (autocast handles its matmuls).
    fully_shard(objective, mesh=mesh, mp_policy=replace(policy, cast_forward_inputs=False))
    if not isinstance(objective, FSDPModule):
        raise RuntimeError("fully_shard did not turn the objective into an FSDP module")


def clip_gradients(parameters: Sequence[torch.Tensor], *, max_norm: float) -> torch.Tensor:
    """Scale gradients so their global L2 norm is at most ``max_norm``; returns the norm before clipping
    (an fp32 device scalar: reading it is the caller's choice, it costs a host sync).

    Works for plain and DTensor (FSDP2-sharded) gradients alike: the norm of sharded gradients is
    reduced over ranks before it is used, so every rank clips by the same global factor.
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    total = torch.nn.utils.get_total_norm(grads, norm_type=2.0)
    if isinstance(total, DTensor):
        total = total.full_tensor()
    torch.nn.utils.clip_grads_with_norm_(parameters, max_norm, total)
    return total
