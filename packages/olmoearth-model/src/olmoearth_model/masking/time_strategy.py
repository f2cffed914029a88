"""``time``: whole timesteps share a role across every monthly modality (recipe §5.3).

A timestep is *valid* when any monthly modality has a non-missing token there. With at least three
valid timesteps, ``max(⌊r_e·n⌋, 1)`` of them are encoded, ``max(⌊r_d·n⌋, 1)`` decoded and the rest
target-only; invalid timesteps are target-only (they end up MISSING anyway). The role of a timestep
holds for every position and bandset of every monthly modality. Static modalities get step A
(random). With fewer than three valid timesteps the whole sample falls back to ``random``.

The reference masked whole batches and took the valid timesteps over the batch; we mask one sample
at a time (in the loader workers), so a sample's own valid timesteps decide.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from olmoearth_model.masking.base import (
    TARGET_ONLY,
    MaskingStrategy,
    fill_missing,
    random_mask,
    shuffled_roles,
)
from olmoearth_model.masking.registry import register_strategy

#: Fewest valid timesteps for which time masking is used.
MIN_VALID_TIMESTEPS = 3


@register_strategy("time")
class TimeMasking(MaskingStrategy):
    """Encode some months, decode others."""

    def apply(self, *, missing: Mapping[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        monthly = [s for s in self.specs if s.is_multitemporal]
        valid = None
        for s in monthly:
            has_data = (~missing[s.name]).any(axis=(0, 1, 3))  # [T]
            valid = has_data if valid is None else valid | has_data
        if valid is None or int(valid.sum()) < MIN_VALID_TIMESTEPS:
            return self.random_masks(missing=missing, rng=rng)

        present = np.flatnonzero(valid)
        n = len(present)
        n_enc = max(int(self.encode_ratio * n), 1)
        n_dec = max(int(self.decode_ratio * n), 1)
        roles = shuffled_roles(n=n, n_encode=n_enc, n_decode=n_dec, rng=rng)  # n ≥ 3: both fit
        per_t = np.full(valid.shape[0], TARGET_ONLY, dtype=np.int8)
        per_t[present] = roles

        out: dict[str, np.ndarray] = {}
        for s in self.specs:
            miss = missing[s.name]
            if s.is_multitemporal:
                mask = np.broadcast_to(per_t.reshape(1, 1, -1, 1), miss.shape)
            else:
                mask = random_mask(
                    shape=miss.shape, rng=rng, encode_ratio=self.encode_ratio, decode_ratio=self.decode_ratio
                )
            out[s.name] = fill_missing(mask=mask, missing=miss)
        return out
