"""Model sizes and the model config (recipe §4.1).

Encoder/decoder widths 128/192/768/1024, encoder depths 4/12/12/24, heads 8/3/12/16, a 4-block
cross-attention decoder of the encoder's width and heads for every size, MLP ratio 4. With the ``v1``
modality set the encoder has exactly 1,361,024 / 6,202,560 / 88,953,600 / 307,770,368 parameters and
the decoder 827,520 / 1,855,680 / 29,541,120 / 52,495,360 (frozen month tables included), as the
reference (verified by ``tests/model/test_sizes.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from olmoearth_data.modalities import ModalitySpec, modality_set


@dataclass(frozen=True)
class ModelSize:
    """Widths, depths and heads of one size.

    Attributes:
        name: ``nano`` / ``tiny`` / ``base`` / ``large`` (reference keys ``nano``,
            ``tiny_shallow_decoder``, ``base_shallow_decoder``, ``large_shallow_decoder``).
        encoder_dim, encoder_depth, encoder_heads: online encoder.
        decoder_dim, decoder_depth, decoder_heads: cross-attention predictor.
        mlp_ratio: MLP hidden width / model width.
    """

    name: str
    encoder_dim: int
    encoder_depth: int
    encoder_heads: int
    decoder_dim: int
    decoder_depth: int
    decoder_heads: int
    mlp_ratio: float = 4.0


SIZES: dict[str, ModelSize] = {
    "nano": ModelSize("nano", 128, 4, 8, 128, 4, 8),
    "tiny": ModelSize("tiny", 192, 12, 3, 192, 4, 3),
    "base": ModelSize("base", 768, 12, 12, 768, 4, 12),
    "large": ModelSize("large", 1024, 24, 16, 1024, 4, 16),
}


def get_size(name: str) -> ModelSize:
    """The size called ``name``."""
    try:
        return SIZES[name]
    except KeyError:
        raise KeyError(f"unknown model size {name!r}; known: {list(SIZES)}") from None


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a :class:`~olmoearth_model.nn.latent_mim.LatentMIM`.

    Attributes:
        size: widths, depths, heads.
        modalities: the modality set the model tokenises (one patch embedding per bandset).
        encoder_drop_path: stochastic depth of every encoder block (constant, recipe §4.2).
        decoder_drop_path: stochastic depth of the decoder blocks (0 in v1).
        target: ``"lite"`` — frozen copy of the initial patch embeddings (v1, recipe §6) — or ``"ema"``
            — EMA copy of the whole encoder (the full Latent MIM ablation).
        ema_decay: EMA decay of the ``"ema"`` target per :meth:`LatentMIM.update_target` call.
    """

    size: ModelSize
    modalities: tuple[ModalitySpec, ...]
    encoder_drop_path: float = 0.1
    decoder_drop_path: float = 0.0
    target: Literal["lite", "ema"] = "lite"
    ema_decay: float = 0.996

    @classmethod
    def from_names(
        cls, *, size: str, modalities: str | Sequence[str] = "v1", **overrides: object
    ) -> ModelConfig:
        """Config from a size name and a modality-set name (``"v1"``, ``"default"``, ``"s2"``) or names."""
        specs = modality_set(modalities if isinstance(modalities, str) else list(modalities))
        return cls(size=get_size(size), modalities=specs, **overrides)  # type: ignore[arg-type]
