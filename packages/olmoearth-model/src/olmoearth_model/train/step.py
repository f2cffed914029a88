"""One optimiser step, kept on the device: microbatches, gradient clipping, a guarded AdamW update.

Nothing here reads a tensor back to the host. Loss parts, the gradient norm and the non-finite
counters stay device tensors until the run log reads them (every ``metrics.log_every`` steps). A step
whose loss or gradient norm is not finite is skipped without a host round trip: AdamW runs its fused
kernel with ``found_inf`` (as ``torch.amp.GradScaler`` does), which leaves weights, moments and the
step count untouched when the flag is set.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import torch
from torch import Tensor

from olmoearth_model.batch import Batch
from olmoearth_model.losses import LossConfig, decoded_sample_counts
from olmoearth_model.nn.latent_mim import LatentMIM
from olmoearth_model.objective import latent_mim_objective
from olmoearth_model.train.config import OptimConfig
from olmoearth_model.train.parallel import Parallel, clip_gradients

PARTS = ("loss", "patch_a", "patch_b", "contrastive")


class ObjectiveModule(torch.nn.Module):
    """One module whose forward is the whole objective: DDP sees one forward per backward, and under
    FSDP2 it is the root whose forward gathers every non-block weight the objective uses."""

    def __init__(self, model: LatentMIM, *, loss_config: LossConfig) -> None:
        super().__init__()
        self.model = model
        self.loss_config = loss_config

    def forward(
        self,
        batch: Batch,
        *,
        probe: bool = False,
        denominators: tuple[dict[str, Tensor], dict[str, Tensor]] | None = None,
        microbatches: int = 1,
    ) -> dict[str, Tensor]:
        """fp32 scalars ``loss``, ``patch_a``, ``patch_b``, ``contrastive``; with ``probe`` also view
        a's pooled ``[B, D]`` embeddings as ``pooled`` (one more encoder pass, for the collapse monitor).

        ``denominators`` (per view, per modality: samples of the *whole* batch with decoded tokens) and
        ``microbatches`` make the losses of a microbatch its share of the whole batch's loss, so the
        sum over microbatches is the whole batch's loss and gradient (see :func:`accumulate`).
        """
        out = latent_mim_objective(
            model=self.model, batch=batch, config=self.loss_config, denominators=denominators,
            contrastive_share=1.0 / microbatches,
        )  # fmt: skip
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


def accumulate(
    par: Parallel, batch: Batch, *, microbatch: int, loss_config: LossConfig, autocast: AbstractContextManager
) -> dict[str, Tensor]:
    """Forward/backward every microbatch of ``batch``; gradients sum to the whole batch's gradient.

    The patch losses average over the samples that have decoded tokens of a modality, so each
    microbatch divides by the whole batch's count of such samples (not by its own); the contrastive
    term (negatives are microbatch-local by design) is the mean over microbatches. Gradients are
    reduced across ranks on the last microbatch only. Returns fp32 device scalars (:data:`PARTS`).
    """
    micro = split_batch(batch, size=microbatch)
    denominators = (
        decoded_sample_counts(masks=batch.masks_a, config=loss_config),
        decoded_sample_counts(masks=batch.masks_b, config=loss_config),
    )
    parts = {k: torch.zeros((), device=batch.timestamps.device) for k in PARTS}
    for i, mb in enumerate(micro):
        with par.gradient_sync(i == len(micro) - 1):
            with autocast:
                out = par.step_module(mb, denominators=denominators, microbatches=len(micro))
            out["loss"].backward()
        for k in PARTS:
            parts[k] += out[k].detach()
    return parts


@dataclass
class NonFiniteGuard:
    """Device counters of skipped steps: ``in_a_row`` now; ``worst`` and ``skipped`` since the last read."""

    device: torch.device
    in_a_row: Tensor = field(init=False)
    worst: Tensor = field(init=False)
    skipped: Tensor = field(init=False)

    def __post_init__(self) -> None:
        self.in_a_row = torch.zeros((), device=self.device)
        self.reset()

    def reset(self) -> None:
        """Start a new reporting window (``worst`` and ``skipped``); ``in_a_row`` carries on."""
        self.worst = self.in_a_row.clone()
        self.skipped = torch.zeros((), device=self.device)

    def update(self, bad: Tensor) -> None:
        bad = bad.to(self.in_a_row.dtype)
        self.in_a_row = (self.in_a_row + 1) * bad
        self.worst = torch.maximum(self.worst, self.in_a_row)
        self.skipped = self.skipped + bad


def build_optimizer(parameters: list[torch.nn.Parameter], *, config: OptimConfig) -> torch.optim.AdamW:
    """Fused AdamW (one kernel for all tensors, CPU and CUDA), so a non-finite step skips on-device."""
    return torch.optim.AdamW(
        parameters, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay,
        fused=True,
    )  # fmt: skip


def optimizer_step(
    *,
    par: Parallel,
    model: LatentMIM,
    optimizer: torch.optim.Optimizer,
    guard: NonFiniteGuard,
    parts: dict[str, Tensor],
    max_grad_norm: float,
) -> Tensor:
    """Clip, then update unless the loss or the gradient norm is non-finite; returns the norm (device)."""
    grad_norm = clip_gradients(model.trainable_parameters(), max_norm=max_grad_norm)
    bad = ~(torch.isfinite(parts["loss"]) & torch.isfinite(grad_norm))
    guard.update(bad)
    optimizer.found_inf = bad.to(torch.float32)  # read by the fused kernel: skip when set
    try:
        optimizer.step()
    finally:
        del optimizer.found_inf
    optimizer.zero_grad(set_to_none=True)
    model.update_target()
    return grad_norm
