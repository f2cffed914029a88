"""``random``: step A only (recipe §5.1) — an independent ⌊½N⌋/⌊½N⌋ split per modality."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from olmoearth_model.masking.base import MaskingStrategy
from olmoearth_model.masking.registry import register_strategy


@register_strategy("random")
class RandomMasking(MaskingStrategy):
    """Each modality: ``⌊r_e·N⌋`` encoded and ``⌊r_d·N⌋`` decoded slots at random, then MISSING filled in."""

    def apply(self, *, missing: Mapping[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self.random_masks(missing=missing, rng=rng)
