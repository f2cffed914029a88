"""Losses (recipe §7), always computed in fp32 with autocast off.

The reference ran them on bf16 module outputs; its own later notes measured a silent +1.3 loss shift
from the batched matmul in bf16, so here every loss disables autocast and up-casts its inputs.

- :func:`modality_patch_discrimination` (v1 main loss): per sample and per modality over the
  prediction mask's DECODER tokens — L2-normalise predictions and targets, logits ``cos/τ``,
  cross-entropy against the diagonal, ``× 2τ``; mean over samples that have decoded tokens, **sum**
  over modalities (a modality with none is skipped).
- :func:`patch_discrimination` (ablation): the same with negatives from every modality of the sample.
- :func:`info_nce`: ``weight · CE(norm(a)·norm(b)ᵀ/τ, arange(B))``, one direction (a → b), negatives
  are the other samples of the (micro)batch.

Everything is padded and batched: one ``[B, n, n]`` logits tensor per modality, no loop over samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from olmoearth_model.batch import MaskValue
from olmoearth_model.nn.tokens import TokenLengths, flatten_tokens, gather_tokens, select_tokens

# Fill for padded logits: far below any cos/τ (|cos/τ| ≤ 1/τ) yet finite, so fully padded rows give
# finite values and zero — not NaN — gradients.
_PAD_LOGIT = -1e9


@dataclass(frozen=True)
class LossConfig:
    """Which losses and their constants (v1 defaults).

    Attributes:
        patch_loss: ``"modality_patch_discrimination"`` (v1) or ``"patch_discrimination"`` (ablation).
        tau: patch-discrimination temperature.
        contrastive: add the InfoNCE term between the two views' pooled embeddings.
        contrastive_tau: InfoNCE temperature.
        contrastive_weight: InfoNCE weight.
    """

    patch_loss: Literal["modality_patch_discrimination", "patch_discrimination"] = (
        "modality_patch_discrimination"
    )
    tau: float = 0.1
    contrastive: bool = True
    contrastive_tau: float = 0.1
    contrastive_weight: float = 0.1


def _per_sample_discrimination(
    *, pred: Tensor, target: Tensor, keep: Tensor, tau: float, length: int | None = None
) -> tuple[Tensor, Tensor]:
    """Patch discrimination of each sample over its ``keep`` tokens.

    Args:
        pred: ``[B, N, D]`` predictions.
        target: ``[B, N, D]`` targets.
        keep: bool ``[B, N]`` tokens taking part (positives on the diagonal, the rest negatives).
        tau: temperature.

    Returns:
        fp32 ``[B]`` loss per sample (0 where nothing is kept) and int64 ``[B]`` kept counts.
    """
    sel = select_tokens(keep=keep, length=length)
    p = F.normalize(gather_tokens(x=pred, selection=sel), dim=-1)
    z = F.normalize(gather_tokens(x=target, selection=sel), dim=-1)
    logits = torch.einsum("bid,bjd->bij", p, z) / tau
    logits = logits.masked_fill(~sel.valid[:, None, :], _PAD_LOGIT)
    ce = torch.logsumexp(logits, dim=-1) - logits.diagonal(dim1=1, dim2=2)  # [B, n]
    ce = torch.where(sel.valid, ce, torch.zeros((), device=ce.device))
    per_sample = 2.0 * tau * ce.sum(dim=1) / sel.counts.clamp(min=1)
    return per_sample, sel.counts


def _mean_over_nonempty(per_sample: Tensor, counts: Tensor, denominator: Tensor | None = None) -> Tensor:
    """Sum over samples with kept tokens ÷ their number (or ÷ ``denominator``, the whole batch's count
    when ``per_sample`` is one microbatch of it: then the microbatch sums add up to the batch's mean)."""
    has = (counts > 0).to(per_sample.dtype)
    denominator = has.sum() if denominator is None else denominator.to(per_sample.dtype)
    return (per_sample * has).sum() / denominator.clamp(min=1)


#: Key of :func:`decoded_sample_counts` for ``patch_discrimination`` (one count over all modalities).
ALL_MODALITIES = "*"


def decoded_sample_counts(*, masks: Mapping[str, Tensor], config: LossConfig) -> dict[str, Tensor]:
    """Samples with at least one DECODER token, per modality (or over all, key :data:`ALL_MODALITIES`,
    for ``patch_discrimination``): the denominators of the patch loss of one view, as device scalars."""
    has = {m: (x == MaskValue.DECODER).flatten(1).any(dim=1) for m, x in masks.items()}
    if config.patch_loss == "patch_discrimination":
        return {ALL_MODALITIES: torch.stack(list(has.values())).any(dim=0).sum()}
    return {m: h.sum() for m, h in has.items()}


def modality_patch_discrimination(
    *,
    predictions: Mapping[str, Tensor],
    targets: Mapping[str, Tensor],
    masks: Mapping[str, Tensor],
    tau: float = 0.1,
    denominators: Mapping[str, Tensor] | None = None,
    lengths: TokenLengths | None = None,
) -> Tensor:
    """v1 patch-discrimination loss of one view (recipe §7.1).

    Args:
        predictions: per modality ``[B, h, w, T_m, S_m, D]`` decoder output.
        targets: per modality ``[B, h, w, T_m, S_m, D]`` (same layout).
        masks: per modality int ``[B, h, w, T_m, S_m]`` of the *prediction's* view; DECODER tokens count.
        tau: temperature.
        denominators: per modality, samples with decoded tokens in the whole batch when this is one
            microbatch of it (:func:`decoded_sample_counts`); None: this batch's own counts.
        lengths: the view's padded lengths, if known (saves one host sync per modality).

    Returns:
        fp32 scalar: Σ over modalities of the mean over samples with decoded tokens.
    """
    device = next(iter(predictions.values())).device
    with torch.autocast(device_type=device.type, enabled=False):
        total = torch.zeros((), device=device)
        for m, pred in predictions.items():
            B = pred.shape[0]
            keep = (masks[m] == MaskValue.DECODER).reshape(B, -1)
            per_sample, counts = _per_sample_discrimination(
                pred=pred.float().reshape(B, keep.shape[1], -1),
                target=targets[m].float().reshape(B, keep.shape[1], -1),
                keep=keep,
                tau=tau,
                length=None if lengths is None else lengths.decoded_per_modality[m],
            )
            # a modality without decoded tokens contributes exactly 0 (skipped), without a host sync
            den = None if denominators is None else denominators[m]
            total = total + _mean_over_nonempty(per_sample, counts, den)
        return total


def patch_discrimination(
    *,
    predictions: Mapping[str, Tensor],
    targets: Mapping[str, Tensor],
    masks: Mapping[str, Tensor],
    tau: float = 0.1,
    denominators: Mapping[str, Tensor] | None = None,
    lengths: TokenLengths | None = None,
) -> Tensor:
    """Ablation: one discrimination per sample over the DECODER tokens of all its modalities.

    Same arguments as :func:`modality_patch_discrimination`; returns the fp32 mean over samples with
    decoded tokens.
    """
    device = next(iter(predictions.values())).device
    with torch.autocast(device_type=device.type, enabled=False):
        names = list(predictions)
        pred, _ = flatten_tokens(tokens={m: predictions[m].float() for m in names})
        target, _ = flatten_tokens(tokens={m: targets[m].float() for m in names})
        mask, _ = flatten_tokens(tokens={m: masks[m] for m in names})
        per_sample, counts = _per_sample_discrimination(
            pred=pred, target=target, keep=mask == MaskValue.DECODER, tau=tau,
            length=None if lengths is None else lengths.decoded,
        )  # fmt: skip
        den = None if denominators is None else denominators[ALL_MODALITIES]
        return _mean_over_nonempty(per_sample, counts, den)


def info_nce(*, a: Tensor, b: Tensor, tau: float = 0.1, weight: float = 0.1) -> Tensor:
    """One-directional InfoNCE between two views' pooled embeddings (recipe §7.2).

    Args:
        a: ``[B, D]`` view a (anchors).
        b: ``[B, D]`` view b; ``b[i]`` is the positive of ``a[i]``, the other rows its negatives.
        tau: temperature.
        weight: factor applied to the loss.

    Returns:
        fp32 scalar ``weight · CE(norm(a) norm(b)ᵀ / τ, arange(B))``.
    """
    with torch.autocast(device_type=a.device.type, enabled=False):
        u = F.normalize(a.float(), dim=-1)
        v = F.normalize(b.float(), dim=-1)
        logits = u @ v.T / tau
        return weight * F.cross_entropy(logits, torch.arange(a.shape[0], device=a.device))


def patch_loss(
    *,
    config: LossConfig,
    predictions: Mapping[str, Tensor],
    targets: Mapping[str, Tensor],
    masks: Mapping[str, Tensor],
    denominators: Mapping[str, Tensor] | None = None,
    lengths: TokenLengths | None = None,
) -> Tensor:
    """The patch loss ``config`` names, for one view (``denominators``: see :func:`decoded_sample_counts`)."""
    if config.patch_loss == "modality_patch_discrimination":
        fn = modality_patch_discrimination
    elif config.patch_loss == "patch_discrimination":
        fn = patch_discrimination
    else:
        raise ValueError(f"unknown patch loss {config.patch_loss!r}")
    return fn(
        predictions=predictions, targets=targets, masks=masks, tau=config.tau, denominators=denominators,
        lengths=lengths,
    )  # fmt: skip
