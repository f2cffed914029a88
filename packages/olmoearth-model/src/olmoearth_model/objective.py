"""The per-(micro)batch training objective (recipe §7.3).

``L = ½ (L_PD(a) + L_PD(b)) + 0.1 · InfoNCE(pooled_a, pooled_b)``. Both views share the data, so the
target (a function of the unmasked data only) is computed once and serves both views — the reference
computed it twice with the same result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from olmoearth_model.batch import Batch
from olmoearth_model.losses import LossConfig, info_nce, patch_loss
from olmoearth_model.nn.latent_mim import LatentMIM
from olmoearth_model.nn.tokens import token_lengths


@dataclass
class ObjectiveOutput:
    """Loss and its parts (fp32 scalars; ``contrastive`` is 0 when switched off)."""

    loss: Tensor
    patch_a: Tensor
    patch_b: Tensor
    contrastive: Tensor


def latent_mim_objective(
    *,
    model: LatentMIM,
    batch: Batch,
    config: LossConfig | None = None,
    denominators: tuple[Mapping[str, Tensor], Mapping[str, Tensor]] | None = None,
    contrastive_share: float = 1.0,
) -> ObjectiveOutput:
    """Forward both views of ``batch`` and combine the losses (call ``.loss.backward()`` on the result).

    For one microbatch of a larger batch: ``denominators`` are views a's and b's
    :func:`~olmoearth_model.losses.decoded_sample_counts` of the whole batch and ``contrastive_share``
    is 1 / number of microbatches, so the microbatches' losses sum to the whole batch's.
    """
    config = config or LossConfig()
    den_a, den_b = denominators or (None, None)
    # Every padded length of the step (encoder, decoder, each modality's loss, both views): one host sync.
    len_a, len_b = token_lengths([batch.masks_a, batch.masks_b])
    kw = {"data": batch.data, "timestamps": batch.timestamps, "patch_size": batch.patch_size}
    targets = model.compute_targets(masks=batch.masks_a, **kw)
    out_a = model(masks=batch.masks_a, lengths=len_a, **kw)
    out_b = model(masks=batch.masks_b, lengths=len_b, **kw)
    pd_a = patch_loss(
        config=config, predictions=out_a.decoded, targets=targets, masks=batch.masks_a, denominators=den_a,
        lengths=len_a,
    )  # fmt: skip
    pd_b = patch_loss(
        config=config, predictions=out_b.decoded, targets=targets, masks=batch.masks_b, denominators=den_b,
        lengths=len_b,
    )  # fmt: skip
    if config.contrastive:
        con = (
            info_nce(
                a=out_a.pooled, b=out_b.pooled, tau=config.contrastive_tau, weight=config.contrastive_weight
            )
            * contrastive_share
        )
    else:
        con = torch.zeros((), device=pd_a.device)
    return ObjectiveOutput(loss=0.5 * (pd_a + pd_b) + con, patch_a=pd_a, patch_b=pd_b, contrastive=con)
