"""``space``: one ``h × w`` role map shared by every modality, timestep and bandset (recipe §5.3).

Exactly ``⌊r_e·hw⌋`` positions are encoded and ``⌊r_d·hw⌋`` decoded; MISSING is filled in afterwards.
Every modality here is spatial, so the reference's random fallback for non-spatial ones never applies.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from olmoearth_model.masking.base import MaskingStrategy, fill_missing, random_roles
from olmoearth_model.masking.registry import register_strategy


@register_strategy("space")
class SpaceMasking(MaskingStrategy):
    """Whole patch columns (all timesteps, bandsets and modalities of a position) share a role."""

    def apply(self, *, missing: Mapping[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        h, w = missing[self.specs[0].name].shape[:2]
        roles = random_roles(n=h * w, rng=rng, encode_ratio=self.encode_ratio, decode_ratio=self.decode_ratio)
        grid = roles.reshape(h, w, 1, 1)
        return {
            s.name: fill_missing(mask=np.broadcast_to(grid, missing[s.name].shape), missing=missing[s.name])
            for s in self.specs
        }
