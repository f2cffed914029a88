"""The Latent MIM model: online encoder, decoder and target (recipe §4.5, §6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from olmoearth_model.nn.decoder import Decoder
from olmoearth_model.nn.encoder import Encoder
from olmoearth_model.nn.sizes import ModelConfig
from olmoearth_model.nn.targets import EMATarget, LiteTarget
from olmoearth_model.nn.tokens import TokenLengths


@dataclass
class LatentMIMOutput:
    """One view through the online model.

    Attributes:
        latent: per modality ``[B, h, w, T_m, S_m, D_enc]`` encoder output (0 where not encoded).
        decoded: per modality ``[B, h, w, T_m, S_m, D_enc]`` predictions (0 where not DECODER).
        pooled: ``[B, D_enc]`` contrastive embedding.
    """

    latent: dict[str, Tensor]
    decoded: dict[str, Tensor]
    pooled: Tensor


def count_parameters(module: nn.Module, *, trainable_only: bool = False) -> int:
    """Sum of ``numel`` over the parameters of ``module`` (frozen ones too unless ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


class LatentMIM(nn.Module):
    """Online encoder + cross-attention decoder + target.

    Build with ``LatentMIM(config=ModelConfig.from_names(size="nano", modalities="v1"))``. The target
    is a deep copy taken here, before any training, so the Lite target equals the online patch
    embeddings at step 0.
    """

    def __init__(self, *, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        size = config.size
        self.encoder = Encoder(
            specs=config.modalities,
            dim=size.encoder_dim,
            depth=size.encoder_depth,
            num_heads=size.encoder_heads,
            mlp_ratio=size.mlp_ratio,
            drop_path=config.encoder_drop_path,
        )
        self.decoder = Decoder(
            specs=config.modalities,
            encoder_dim=size.encoder_dim,
            dim=size.decoder_dim,
            depth=size.decoder_depth,
            num_heads=size.decoder_heads,
            mlp_ratio=size.mlp_ratio,
            drop_path=config.decoder_drop_path,
        )
        if config.target == "lite":
            self.target: LiteTarget | EMATarget = LiteTarget(encoder=self.encoder)
        elif config.target == "ema":
            self.target = EMATarget(encoder=self.encoder, decay=config.ema_decay)
        else:
            raise ValueError(f"unknown target {config.target!r}; expected 'lite' or 'ema'")

    def forward(
        self,
        *,
        data: Mapping[str, Tensor],
        masks: Mapping[str, Tensor],
        timestamps: Tensor,
        patch_size: int,
        lengths: TokenLengths | None = None,
    ) -> LatentMIMOutput:
        """Encode and decode one masked view.

        Args:
            data: per modality float32 ``[B, H, W, T_m, C_m]``, ``H = W = h·p``, missing = −99999.
            masks: per modality int8 ``[B, h, w, T_m, S_m]`` token roles of this view.
            timestamps: int64 ``[B, T, 3]`` (day, month0, year).
            patch_size: ``p`` in 10 m pixels (1..8).
            lengths: the view's padded lengths (:func:`~olmoearth_model.nn.tokens.token_lengths`), if
                known: then no host sync happens here; None reads them from the masks (3 syncs).
        """
        enc = self.encoder(data=data, masks=masks, timestamps=timestamps, patch_size=patch_size,
                           length=lengths and lengths.encoded,
                           counts=lengths and lengths.encoded_counts)  # fmt: skip
        decoded = self.decoder(latent=enc.tokens, masks=masks, timestamps=timestamps, patch_size=patch_size,
                               lengths=lengths)  # fmt: skip
        return LatentMIMOutput(latent=enc.tokens, decoded=decoded, pooled=enc.pooled)

    def compute_targets(
        self, *, data: Mapping[str, Tensor], masks: Mapping[str, Tensor], timestamps: Tensor, patch_size: int
    ) -> dict[str, Tensor]:
        """Targets of the unmasked input (no grad): per modality ``[B, h, w, T_m, S_m, D_enc]``.

        Both views share data and missing tokens, so one call serves both; ``masks`` of either view works.
        """
        return self.target(data=data, masks=masks, timestamps=timestamps, patch_size=patch_size)

    def update_target(self) -> None:
        """Call after each optimiser step: EMA update for the ``"ema"`` target, nothing for ``"lite"``."""
        self.target.update(self.encoder)

    def trainable_parameters(self) -> Sequence[nn.Parameter]:
        """Parameters the optimiser should see (frozen month tables and the target are excluded)."""
        return [p for p in self.parameters() if p.requires_grad]

    def parameter_counts(self) -> dict[str, int]:
        """``encoder`` / ``decoder`` / ``target`` (all parameters, frozen included) and ``trainable``."""
        return {
            "encoder": count_parameters(self.encoder),
            "decoder": count_parameters(self.decoder),
            "target": count_parameters(self.target),
            "trainable": count_parameters(self, trainable_only=True),
        }


def build_model(*, size: str, modalities: str | Sequence[str] = "v1", **overrides: object) -> LatentMIM:
    """``LatentMIM`` from a size name and a modality set name (or list of modality names)."""
    return LatentMIM(config=ModelConfig.from_names(size=size, modalities=modalities, **overrides))
