"""Every random choice of a batch, derived from (seed, epoch, global batch index) alone.

So the batches do not depend on the number of loader workers or ranks, and a resumed run sees exactly
the batches an uninterrupted run would have seen. **Deviation:** the reference drew patch size and
crop side per *rank* batch from a per-worker RNG; here all ranks share them for a given global batch
(the same distribution, and ranks stay in step).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from olmoearth_data.modalities import ModalitySpec
from olmoearth_model.budget import timesteps_for_budget
from olmoearth_model.data.reader import Crop

TILE_PIXELS = 256


@dataclass(frozen=True)
class BatchPlan:
    """Shared parameters of one global batch."""

    patch_size: int
    crop_tokens: int
    timesteps: int

    @property
    def crop_pixels(self) -> int:
        return self.patch_size * self.crop_tokens


def batch_rng(*, seed: int, epoch: int, batch: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, batch])


def epoch_order(*, indices: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """The epoch's permutation of usable sample rows."""
    return np.random.default_rng([seed, epoch, 2**31 - 1]).permutation(indices)


def plan_batch(
    *,
    rng: np.random.Generator,
    specs: Sequence[ModalitySpec],
    patch_sizes: tuple[int, int] = (1, 8),
    crop_tokens: tuple[int, int] = (1, 12),
    token_budget: int = 2250,
) -> BatchPlan:
    """p ~ U{patch_sizes}, h ~ U{crop_tokens}, T from the token budget (recipe §8.4)."""
    p = int(rng.integers(patch_sizes[0], patch_sizes[1] + 1))
    h = int(rng.integers(crop_tokens[0], crop_tokens[1] + 1))
    h = min(h, TILE_PIXELS // p)
    t = timesteps_for_budget(h=h, specs=specs, budget=token_budget)
    return BatchPlan(p, h, t)


def plan_crop(*, rng: np.random.Generator, plan: BatchPlan, present_any: np.ndarray) -> Crop:
    """Uniform spatial offset and a contiguous window of ``plan.timesteps`` periods for one sample.

    ``present_any`` is bool ``[12]``: some monthly modality has that period. The periods are first
    trimmed to the first…last present one; with more than T left the window starts on a present period
    uniformly among those that fit, else at the first present period (padding ≥ 12 is missing).
    """
    size = plan.crop_pixels
    y0 = int(rng.integers(0, TILE_PIXELS - size + 1))
    x0 = int(rng.integers(0, TILE_PIXELS - size + 1))
    t = plan.timesteps
    present = np.flatnonzero(present_any)
    if present.size == 0:
        start = 0
    else:
        first, last = int(present[0]), int(present[-1])
        if last - first + 1 > t:
            starts = [int(s) for s in present if s + t <= last + 1]
            start = int(rng.choice(starts))
        else:
            start = first
    return Crop(y0=y0, x0=x0, size=size, periods=tuple(range(start, start + t)))
