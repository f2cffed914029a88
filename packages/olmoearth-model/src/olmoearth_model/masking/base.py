"""What every masking strategy shares.

Masks are drawn per sample on CPU in the loader workers (as the reference at HEAD and I-JEPA do),
with numpy and a ``numpy.random.Generator`` the caller passes in, so a worker seeded once gives a
reproducible stream. Inputs are the token-level "missing" arrays of one sample; outputs are int8
token masks of the same shape with :class:`~olmoearth_model.batch.MaskValue` roles.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np

from olmoearth_data.modalities import ModalitySpec
from olmoearth_model.batch import MaskValue

ONLINE = np.int8(MaskValue.ONLINE_ENCODER)
TARGET_ONLY = np.int8(MaskValue.TARGET_ENCODER_ONLY)
DECODER = np.int8(MaskValue.DECODER)
MISSING = np.int8(MaskValue.MISSING)


def shuffled_roles(*, n: int, n_encode: int, n_decode: int, rng: np.random.Generator) -> np.ndarray:
    """``n_encode`` ONLINE_ENCODER, ``n_decode`` DECODER, the rest TARGET_ENCODER_ONLY, uniformly permuted.

    Returns:
        int8 ``[n]``.
    """
    if n_encode + n_decode > n:
        raise ValueError(f"{n_encode} encoded + {n_decode} decoded > {n} slots")
    roles = np.full(n, TARGET_ONLY, dtype=np.int8)
    roles[:n_encode] = ONLINE
    roles[n_encode : n_encode + n_decode] = DECODER
    return roles[rng.permutation(n)]


def random_roles(*, n: int, rng: np.random.Generator, encode_ratio: float, decode_ratio: float) -> np.ndarray:
    """:func:`shuffled_roles` with ``⌊r_e·n⌋`` encoded and ``⌊r_d·n⌋`` decoded slots; int8 ``[n]``."""
    return shuffled_roles(n=n, n_encode=int(n * encode_ratio), n_decode=int(n * decode_ratio), rng=rng)


def random_mask(
    *, shape: tuple[int, ...], rng: np.random.Generator, encode_ratio: float, decode_ratio: float
) -> np.ndarray:
    """Step A of recipe §5.1 for one modality: :func:`random_roles` over all ``prod(shape)`` slots.

    Missing slots are counted in ``n`` (as the reference), so the split among present tokens is only
    approximately ``r_e / r_d``; overwrite them with :func:`fill_missing` afterwards.
    """
    n = int(np.prod(shape))
    return random_roles(n=n, rng=rng, encode_ratio=encode_ratio, decode_ratio=decode_ratio).reshape(shape)


def fill_missing(*, mask: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """``mask`` with MISSING wherever ``missing`` (bool, same shape) is True."""
    return np.where(missing, MISSING, mask).astype(np.int8, copy=False)


class MaskingStrategy(ABC):
    """Draws the token roles of one masked view of one sample.

    Args:
        specs: the modality set (order = batch order).
        encode_ratio: share of token slots drawn ONLINE_ENCODER in the base random split.
        decode_ratio: share drawn DECODER.
    """

    name: ClassVar[str] = ""

    def __init__(
        self, *, specs: Sequence[ModalitySpec], encode_ratio: float = 0.5, decode_ratio: float = 0.5
    ) -> None:
        if encode_ratio < 0 or decode_ratio < 0 or encode_ratio + decode_ratio > 1:
            raise ValueError(f"bad ratios: encode {encode_ratio}, decode {decode_ratio}")
        self.specs = tuple(specs)
        self.encode_ratio = encode_ratio
        self.decode_ratio = decode_ratio

    def check(self, missing: Mapping[str, np.ndarray]) -> None:
        """Raise unless ``missing`` has a 4-D bool array with the right bandset count per modality."""
        for spec in self.specs:
            if spec.name not in missing:
                raise KeyError(f"missing-token array for {spec.name} not given")
            arr = missing[spec.name]
            if arr.ndim != 4 or arr.shape[-1] != spec.num_bandsets or arr.dtype != np.bool_:
                raise ValueError(
                    f"{spec.name}: expected bool [h, w, T, {spec.num_bandsets}], got {arr.dtype} {arr.shape}"
                )

    def random_masks(
        self, *, missing: Mapping[str, np.ndarray], rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Step A for every modality, MISSING filled in."""
        return {
            s.name: fill_missing(
                mask=random_mask(
                    shape=missing[s.name].shape,
                    rng=rng,
                    encode_ratio=self.encode_ratio,
                    decode_ratio=self.decode_ratio,
                ),
                missing=missing[s.name],
            )
            for s in self.specs
        }

    def __call__(
        self, *, missing: Mapping[str, np.ndarray], rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Token roles of one view of one sample.

        Args:
            missing: per modality bool ``[h, w, T_m, S_m]``, True where the token has no data
                (:func:`olmoearth_model.masking.missing.token_missing`).
            rng: the worker's generator; the only source of randomness.

        Returns:
            per modality int8 ``[h, w, T_m, S_m]`` with values in :class:`MaskValue`; MISSING exactly where
            ``missing`` is True.
        """
        self.check(missing)
        return self.apply(missing=missing, rng=rng)

    @abstractmethod
    def apply(self, *, missing: Mapping[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Strategy-specific part of :meth:`__call__` (inputs already checked)."""


def stack_masks(
    *, strategy: MaskingStrategy, missing: Sequence[Mapping[str, np.ndarray]], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Draw one view for each of ``B`` samples and stack: per modality int8 ``[B, h, w, T_m, S_m]``."""
    views = [strategy(missing=m, rng=rng) for m in missing]
    return {s.name: np.stack([v[s.name] for v in views]) for s in strategy.specs}
