"""Data parallelism from the environment ``torchrun`` sets (single- or multi-node alike)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the job: global ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @classmethod
    def from_environment(cls) -> DistEnv:
        return cls(
            rank=int(os.environ.get("RANK", 0)),
            world_size=int(os.environ.get("WORLD_SIZE", 1)),
            local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        )


def init_distributed(env: DistEnv, *, device: torch.device) -> None:
    """Join the process group (NCCL on CUDA, gloo on CPU) when launched by torchrun with > 1 process."""
    if env.enabled and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")


def shutdown_distributed() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def any_rank(flag: bool, *, env: DistEnv, device: torch.device) -> bool:
    """True on every rank if ``flag`` is true on any (e.g. one rank got SIGTERM: all stop together)."""
    if not env.enabled:
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


@torch.no_grad()
def rank_divergence(parameters: list[torch.Tensor], *, env: DistEnv) -> float:
    """Spread (max − min over ranks) of a float64 checksum of the weights: 0.0 when ranks are in sync."""
    checksum = torch.stack([p.detach().double().sum() for p in parameters]).sum().reshape(1)
    if not env.enabled:
        return 0.0
    high, low = checksum.clone(), checksum.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    return float(high - low)
