"""Training health on a fixed probe batch: loss, and the collapse monitor of pooled embeddings.

A collapsing representation makes every sample's pooled embedding the same: the per-dimension
standard deviation across the probe batch goes to 0 and the effective rank (exp of the entropy of the
normalised singular values, Roy & Vetterli 2007) goes to 1. Latent MIM with an EMA target is reported
to collapse; Latent MIM Lite should not.
"""

from __future__ import annotations

import torch
from torch import nn

from olmoearth_model.batch import Batch


def effective_rank(embeddings: torch.Tensor) -> float:
    """exp(entropy of the normalised singular values) of ``[B, D]`` embeddings (centred); 1..min(B, D)."""
    x = embeddings.double() - embeddings.double().mean(dim=0, keepdim=True)
    if not bool(torch.isfinite(x).all()):  # a diverged model: report it, do not crash the SVD
        return float("nan")
    s = torch.linalg.svdvals(x)
    if float(s.sum()) == 0.0:
        return 1.0
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def collapse_stats(pooled: torch.Tensor) -> dict[str, float]:
    """``probe_embedding_std`` (mean over dims of the std across samples) and ``probe_effective_rank``."""
    pooled = pooled.float()
    return {
        "probe_embedding_std": float(pooled.std(dim=0).mean()),
        "probe_effective_rank": effective_rank(pooled),
    }


@torch.no_grad()
def probe_metrics(*, objective: nn.Module, model: nn.Module, probe: Batch) -> dict[str, float]:
    """Eval-mode (no DropPath) loss and collapse statistics of the probe batch, comparable across steps.

    ``objective`` is the trainer's objective module called with ``probe=True`` (it returns the loss
    and view a's pooled ``[B, D]`` embeddings); ``model`` is the ``LatentMIM`` inside it. Under FSDP2
    the objective is the sharded root, so every rank must call this together.
    """
    was_training = model.training
    model.eval()
    try:
        out = objective(probe, probe=True)
        return {"probe_loss": float(out["loss"]), **collapse_stats(out["pooled"])}
    finally:
        model.train(was_training)
