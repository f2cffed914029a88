"""Token-level missing flags from pixel data (docs/batch-schema.md "Missing data").

A token of bandset ``s`` is missing when *any* pixel of its ``p × p`` patch has *any* band of ``s``
equal to ``MISSING_VALUE``. **Deviation:** the reference read only the patch's top-left pixel; its
data only had whole-tile or whole-period gaps, where both agree, but partial swaths in our composites
must not be embedded as if whole.
"""

from __future__ import annotations

import numpy as np

from olmoearth_data.modalities import ModalitySpec
from olmoearth_model.batch import MISSING_VALUE


def token_missing(*, data: np.ndarray, spec: ModalitySpec, patch_size: int) -> np.ndarray:
    """Missing flag of every token of one modality of one sample.

    Args:
        data: float ``[H, W, T, C]`` pixels (all bands of ``spec`` in registry order), missing =
            ``MISSING_VALUE``; ``H`` and ``W`` multiples of ``patch_size``.
        spec: the modality.
        patch_size: ``p`` in 10 m pixels.

    Returns:
        bool ``[H/p, W/p, T, S]``.
    """
    H, W, T, C = data.shape
    if spec.num_bands != C:
        raise ValueError(f"{spec.name}: {C} channels, expected {spec.num_bands}")
    if H % patch_size or W % patch_size:
        raise ValueError(f"{spec.name}: {H}×{W} px is not a multiple of patch size {patch_size}")
    bad = data == np.float32(MISSING_VALUE)  # [H, W, T, C]
    per_bandset = np.stack(
        [bad[..., idx[0] : idx[-1] + 1].any(axis=-1) for idx in spec.bandset_band_indices()], -1
    )
    p = patch_size
    return per_bandset.reshape(H // p, p, W // p, p, T, spec.num_bandsets).any(axis=(1, 3))


def sample_token_missing(
    *, data: dict[str, np.ndarray], specs: tuple[ModalitySpec, ...] | list[ModalitySpec], patch_size: int
) -> dict[str, np.ndarray]:
    """:func:`token_missing` for every modality of a sample: per modality bool ``[h, w, T_m, S_m]``."""
    return {s.name: token_missing(data=data[s.name], spec=s, patch_size=patch_size) for s in specs}
