"""Prediction targets (recipe §6).

``LiteTarget`` (v1, "Latent MIM Lite"): a frozen deep copy of the online encoder's *initial* patch
embeddings — same random weights as the online ones at step 0 — applied to the unmasked input. No
encodings (the reference comment: they would make the shared encodings a trivial solution), no
LayerNorm, no projection. The reference deep-copies the whole encoder and runs it with exit depth 0,
which computes exactly this; we copy only the patch embeddings (like the reference's later
``projection_only_target``), so the target holds no unused frozen weights.

``EMATarget`` (ablation, full Latent MIM): an EMA copy of the whole encoder (encodings, blocks,
final norm) run with every non-missing token visible — the variant the paper reports collapsing.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from olmoearth_model.batch import MaskValue
from olmoearth_model.nn.encoder import Encoder


def _freeze(module: nn.Module) -> None:
    for p in module.parameters():
        p.requires_grad_(False)


def unmasked(*, masks: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Every non-MISSING token relabelled ONLINE_ENCODER (the reference's ``batch.unmask()``)."""
    return {m: v.masked_fill(v != MaskValue.MISSING, int(MaskValue.ONLINE_ENCODER)) for m, v in masks.items()}


class LiteTarget(nn.Module):
    """Frozen copy of the initial patch embeddings; targets are their raw outputs."""

    def __init__(self, *, encoder: Encoder) -> None:
        super().__init__()
        self.patch_embed = copy.deepcopy(encoder.patch_embed)
        _freeze(self)

    @torch.no_grad()
    def forward(
        self, *, data: Mapping[str, Tensor], masks: Mapping[str, Tensor], timestamps: Tensor, patch_size: int
    ) -> dict[str, Tensor]:
        """Targets of every token (masks and timestamps are unused: nothing here depends on them).

        Returns:
            per modality ``[B, h, w, T_m, S_m, D_enc]``; values at MISSING positions are meaningless.
        """
        return self.patch_embed(data=data, patch_size=patch_size)

    def update(self, online: Encoder) -> None:
        """No-op: the Lite target never changes (the reference's ``ema_decay=(1.0, 1.0)``)."""


class EMATarget(nn.Module):
    """EMA copy of the whole online encoder; always runs without DropPath."""

    def __init__(self, *, encoder: Encoder, decay: float = 0.996) -> None:
        super().__init__()
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
        self.decay = decay
        self.encoder = copy.deepcopy(encoder)
        _freeze(self)
        self.train(False)

    def train(self, mode: bool = True) -> EMATarget:
        # the target is a teacher: stochastic depth stays off whatever the wrapper's mode
        return super().train(False)

    @torch.no_grad()
    def forward(
        self, *, data: Mapping[str, Tensor], masks: Mapping[str, Tensor], timestamps: Tensor, patch_size: int
    ) -> dict[str, Tensor]:
        """Encoder output with every non-missing token visible: per modality ``[B, h, w, T_m, S_m, D]``."""
        out = self.encoder(
            data=data, masks=unmasked(masks=masks), timestamps=timestamps, patch_size=patch_size
        )
        return out.tokens

    @torch.no_grad()
    def update(self, online: Encoder) -> None:
        """``θ_target ← decay·θ_target + (1 − decay)·θ_online`` for every parameter."""
        for t, o in zip(self.encoder.parameters(), online.parameters(), strict=True):
            t.lerp_(o.detach().to(t.dtype), 1.0 - self.decay)
