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


@torch.no_grad()
def sync_ranks(
    *, stop: bool, parameters: list[torch.Tensor] | None, env: DistEnv, device: torch.device
) -> tuple[bool, float | None]:
    """One all-reduce for the periodic rank check: ``(stop on any rank, weight divergence)``.

    ``parameters``: replicated weights (DDP) to compare across ranks through a float64 checksum —
    the divergence is its spread (max − min over ranks), 0.0 when the ranks are in sync; None (FSDP2
    shards differ by design) gives None. One process: ``(stop, 0.0 or None)`` without communication.
    """
    checksum = None
    if parameters is not None:
        checksum = torch.stack([p.detach().double().sum() for p in parameters]).sum()
    if not env.enabled:
        return stop, None if checksum is None else 0.0
    # [stop, checksum, −checksum] under MAX gives any-stop, max and −min in one collective.
    c = torch.zeros((), dtype=torch.float64, device=device) if checksum is None else checksum.to(device)
    t = torch.stack([torch.tensor(float(stop), dtype=torch.float64, device=device), c, -c])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    flag, high, neg_low = t.tolist()
    return flag > 0, None if checksum is None else high + neg_low
