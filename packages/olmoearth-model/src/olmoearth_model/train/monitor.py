"""Training health on a fixed probe batch: loss, and the collapse monitor of pooled embeddings.

A collapsing representation makes every sample's pooled embedding the same: the per-dimension
standard deviation across the probe batch goes to 0 and the effective rank (exp of the entropy of the
normalised singular values, Roy & Vetterli 2007) goes to 1. Latent MIM with an EMA target is reported
to collapse; Latent MIM Lite should not.
"""

from __future__ import annotations

import torch

from olmoearth_model.batch import Batch
from olmoearth_model.losses import LossConfig
from olmoearth_model.nn.latent_mim import LatentMIM
from olmoearth_model.objective import latent_mim_objective


def effective_rank(embeddings: torch.Tensor) -> float:
    """exp(entropy of the normalised singular values) of ``[B, D]`` embeddings (centred); 1..min(B, D)."""
    x = embeddings.double() - embeddings.double().mean(dim=0, keepdim=True)
    s = torch.linalg.svdvals(x)
    if float(s.sum()) == 0.0:
        return 1.0
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def probe_metrics(model: LatentMIM, probe: Batch, *, loss_config: LossConfig) -> dict[str, float]:
    """Eval-mode (no DropPath) loss and collapse statistics of the probe batch, comparable across steps."""
    was_training = model.training
    model.eval()
    try:
        loss = float(latent_mim_objective(model=model, batch=probe, config=loss_config).loss)
        pooled = model(data=probe.data, masks=probe.masks_a, timestamps=probe.timestamps,
                       patch_size=probe.patch_size).pooled.float()  # fmt: skip
        return {
            "probe_loss": loss,
            "probe_embedding_std": float(pooled.std(dim=0).mean()),
            "probe_effective_rank": effective_rank(pooled),
        }
    finally:
        model.train(was_training)
