"""Random batches with the exact layout of ``docs/batch-schema.md`` (smoke tests and benchmarks).

The pixels are Gaussian noise; everything else — shapes, dtypes, missing values, masks drawn by a
real masking strategy from the token-level missing flags — is what the loader produces.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from olmoearth_data.modalities import ModalitySpec
from olmoearth_model.batch import MISSING_VALUE, Batch
from olmoearth_model.masking import build_masking, sample_token_missing, stack_masks


def synthetic_batch(
    *,
    specs: Sequence[ModalitySpec],
    batch_size: int,
    patch_size: int,
    h: int,
    timesteps: int,
    rng: np.random.Generator,
    masking: str = "modality_cross_random",
    missing_modality_prob: float = 0.0,
    missing_timestep_prob: float = 0.0,
) -> Batch:
    """A batch of noise with real masks.

    Args:
        specs: modality set.
        batch_size: ``B``.
        patch_size: ``p``; images are ``h·p`` pixels square.
        h: crop side in tokens.
        timesteps: ``T`` of the monthly modalities.
        rng: the only source of randomness.
        masking: registered strategy name used for both views.
        missing_modality_prob: chance that a modality is absent for a sample (all ``MISSING_VALUE``).
        missing_timestep_prob: chance that one period of a monthly modality is absent.
    """
    H = h * patch_size
    data: dict[str, np.ndarray] = {}
    for s in specs:
        T = timesteps if s.is_multitemporal else 1
        x = rng.standard_normal((batch_size, H, H, T, s.num_bands), dtype=np.float32)
        gone = rng.random(batch_size) < missing_modality_prob
        x[gone] = MISSING_VALUE
        if s.is_multitemporal and missing_timestep_prob > 0:
            b, t = np.nonzero(rng.random((batch_size, T)) < missing_timestep_prob)
            x[b, :, :, t] = MISSING_VALUE
        data[s.name] = x
    strategy = build_masking(name=masking, specs=specs)
    missing = [
        sample_token_missing(data={k: v[i] for k, v in data.items()}, specs=specs, patch_size=patch_size)
        for i in range(batch_size)
    ]
    masks_a = stack_masks(strategy=strategy, missing=missing, rng=rng)
    masks_b = stack_masks(strategy=strategy, missing=missing, rng=rng)
    months = (np.arange(timesteps)[None, :] + rng.integers(0, 12, size=(batch_size, 1))) % 12
    timestamps = np.stack([np.ones_like(months), months, np.full_like(months, 2022)], axis=-1)
    return Batch(
        patch_size=patch_size,
        data={k: torch.from_numpy(v) for k, v in data.items()},
        timestamps=torch.from_numpy(timestamps.astype(np.int64)),
        masks_a={k: torch.from_numpy(v) for k, v in masks_a.items()},
        masks_b={k: torch.from_numpy(v) for k, v in masks_b.items()},
        sample_index=torch.arange(batch_size, dtype=torch.int64),
    )
