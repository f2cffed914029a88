"""The per-(micro)batch training objective (recipe §7.3).

``L = ½ (L_PD(a) + L_PD(b)) + 0.1 · InfoNCE(pooled_a, pooled_b)``. Both views share the data, so the
target (a function of the unmasked data only) is computed once and serves both views — the reference
computed it twice with the same result.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from olmoearth_model.batch import Batch
from olmoearth_model.losses import LossConfig, info_nce, patch_loss
from olmoearth_model.nn.latent_mim import LatentMIM


@dataclass
class ObjectiveOutput:
    """Loss and its parts (fp32 scalars; ``contrastive`` is 0 when switched off)."""

    loss: Tensor
    patch_a: Tensor
    patch_b: Tensor
    contrastive: Tensor


def latent_mim_objective(
    *, model: LatentMIM, batch: Batch, config: LossConfig | None = None
) -> ObjectiveOutput:
    """Forward both views of ``batch`` and combine the losses (call ``.loss.backward()`` on the result)."""
    config = config or LossConfig()
    kw = {"data": batch.data, "timestamps": batch.timestamps, "patch_size": batch.patch_size}
    targets = model.compute_targets(masks=batch.masks_a, **kw)
    out_a = model(masks=batch.masks_a, **kw)
    out_b = model(masks=batch.masks_b, **kw)
    pd_a = patch_loss(config=config, predictions=out_a.decoded, targets=targets, masks=batch.masks_a)
    pd_b = patch_loss(config=config, predictions=out_b.decoded, targets=targets, masks=batch.masks_b)
    if config.contrastive:
        con = info_nce(
            a=out_a.pooled, b=out_b.pooled, tau=config.contrastive_tau, weight=config.contrastive_weight
        )
    else:
        con = torch.zeros((), device=pd_a.device)
    return ObjectiveOutput(loss=0.5 * (pd_a + pd_b) + con, patch_a=pd_a, patch_b=pd_b, contrastive=con)
