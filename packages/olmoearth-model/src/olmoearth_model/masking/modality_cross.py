"""``modality_cross_random``: the v1 masking (recipe §5.1–§5.2).

Per sample and view:

A. Base random split per modality (:meth:`MaskingStrategy.random_masks`): ``⌊½N⌋`` ONLINE_ENCODER and
   ``⌊½N⌋`` DECODER over all ``N = h·w·T·S`` slots, missing slots included in ``N``, then MISSING
   overwritten.
B. Bandset roles. *Present* bandsets ``P`` (:func:`present_bandsets`, in modality-set then bandset
   order): a bandset of a modality that is not entirely missing which, for an encodable modality,
   also has at least one ONLINE_ENCODER token after step A. ``E`` = the present bandsets that are not
   decode-only (maps). :func:`select_bandsets` draws the encoded set and the decode set ``D``:

   - ``|P| ≥ 3``: ``k_enc ~ U{min(2,|E|)..|E|}``, encoded = a uniform ``k_enc``-subset of ``E``;
     ``k_dec ~ U{1..|P|}``, ``D`` = a uniform ``k_dec``-subset of all of ``P`` (maps and encoded bandsets
     included: ``allow_encoding_decoding_same_bandset=True``).
   - ``|P| = 2``: encode the first, decode the second; ``|P| = 1``: encode it, decode nothing.

   :func:`apply_bandset_rules` then walks every bandset: not encoded → its ONLINE_ENCODER tokens become
   TARGET_ENCODER_ONLY and *nothing else is checked* (so it is decoded whatever ``D`` says — the
   reference's rule order, which makes the paper's "not used" role impossible); encoded but not in
   ``D`` → its DECODER tokens become TARGET_ENCODER_ONLY; encoded and in ``D`` → step A stands.
C. Fallback: a sample left with 0 encoded or 0 decoded tokens gets every non-decode-only modality
   redrawn (:func:`redraw_non_missing`): ``⌊½n⌋/⌊½n⌋`` over its ``n`` non-missing tokens, a single one
   encoded.

**Decision — |P| ≤ 2 never encodes a map.** The reference's ``|P| ≤ 2`` branches do not check
decode-only modalities, so a sample whose only present bandsets are, say, WorldCover and SRTM would
feed WorldCover to the encoder. We keep "maps never enter the encoder" absolute: with ``|P| ≤ 2`` the
encoded set is the first *encodable* present bandset (none if there is none) and everything else in
``P`` is decoded. Where ``P``'s first element is encodable — every case with an encodable bandset first,
which with v1's order (observations before maps) is every case the reference encodes something
encodable — this is the reference's draw. A sample with nothing encodable then hits the fallback,
which only redraws encodable modalities. ``tests/model/test_masking.py`` checks this.

``modality_cross_random_maps_encodable`` is the ablation in which maps are ordinary encodable
modalities (no decode-only list), with the reference's ``|P| ≤ 2`` rule.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

import numpy as np

from olmoearth_data.modalities import ModalitySpec
from olmoearth_model.masking.base import (
    DECODER,
    MISSING,
    ONLINE,
    TARGET_ONLY,
    MaskingStrategy,
    random_roles,
)
from olmoearth_model.masking.registry import register_strategy

Bandset = tuple[str, int]


def present_bandsets(
    *, masks: Mapping[str, np.ndarray], specs: Sequence[ModalitySpec], decode_only: Collection[str]
) -> list[Bandset]:
    """Present bandsets after step A, in modality-set then bandset order.

    Args:
        masks: per modality int8 ``[h, w, T, S]`` step-A masks (MISSING filled in).
        specs: the modality set.
        decode_only: names of decode-only modalities (present whenever they have any non-missing token).
    """
    out: list[Bandset] = []
    for spec in specs:
        m = masks[spec.name]
        if bool((m == MISSING).all()):
            continue
        for s in range(spec.num_bandsets):
            bandset = m[..., s]
            if spec.name in decode_only:
                if bool((bandset != MISSING).any()):
                    out.append((spec.name, s))
            elif bool((bandset == ONLINE).any()):
                out.append((spec.name, s))
    return out


def select_bandsets(
    *,
    present: Sequence[Bandset],
    decode_only: Collection[str],
    rng: np.random.Generator,
    min_encoded: int = 2,
    max_encoded: int | None = None,
    min_decoded: int = 1,
    max_decoded: int | None = None,
) -> tuple[set[Bandset], set[Bandset]]:
    """Draw ``(encoded, D)`` for one sample (recipe §5.2, ``allow_encoding_decoding_same_bandset=True``).

    Args:
        present: ``P`` in order.
        decode_only: modalities never encoded (see the module docstring for ``|P| ≤ 2``).
        rng: generator.
        min_encoded, max_encoded: bounds on ``k_enc`` (clipped to ``|E|``).
        min_decoded, max_decoded: bounds on ``k_dec`` (clipped to ``|P|``).
    """
    encodable = [b for b in present if b[0] not in decode_only]
    if len(present) <= 2:
        encoded = set(encodable[:1])
        if len(present) == 1:
            return encoded, set()
        return encoded, set(present) - encoded
    hi_enc = len(encodable) if max_encoded is None else min(max_encoded, len(encodable))
    lo_enc = min(min_encoded, len(encodable), hi_enc)
    k_enc = int(rng.integers(lo_enc, hi_enc + 1))
    encoded = {encodable[i] for i in rng.choice(len(encodable), size=k_enc, replace=False)}
    hi_dec = len(present) if max_decoded is None else min(max_decoded, len(present))
    lo_dec = min(min_decoded, hi_dec)
    k_dec = int(rng.integers(lo_dec, hi_dec + 1))
    decoded = {present[i] for i in rng.choice(len(present), size=k_dec, replace=False)}
    return encoded, decoded


def apply_bandset_rules(
    *, masks: Mapping[str, np.ndarray], encoded: Collection[Bandset], decoded: Collection[Bandset]
) -> dict[str, np.ndarray]:
    """Deterministic step B on one sample's masks (pure: the inputs are not modified).

    Args:
        masks: per modality int8 ``[h, w, T, S]`` step-A masks.
        encoded: bandsets ``(modality, index)`` allowed into the encoder.
        decoded: the decode set ``D``.

    Returns:
        New per-modality masks after the three rules in reference order (module docstring).
    """
    out: dict[str, np.ndarray] = {}
    for name, m in masks.items():
        new = m.copy()
        for s in range(m.shape[-1]):
            band = new[..., s]  # a view: edits land in ``new``
            if (name, s) not in encoded:
                band[band == ONLINE] = TARGET_ONLY
            elif (name, s) not in decoded:
                band[band == DECODER] = TARGET_ONLY
        out[name] = new
    return out


def redraw_non_missing(
    *, mask: np.ndarray, rng: np.random.Generator, encode_ratio: float, decode_ratio: float
) -> np.ndarray:
    """Fallback split of one modality: ``⌊r_e·n⌋/⌊r_d·n⌋`` over its ``n`` non-missing tokens (1 → encoded)."""
    out = mask.copy()
    keep = out != MISSING
    n = int(keep.sum())
    if n == 1:
        out[keep] = ONLINE
    elif n > 1:
        out[keep] = random_roles(n=n, rng=rng, encode_ratio=encode_ratio, decode_ratio=decode_ratio)
    return out


@register_strategy("modality_cross_random")
class ModalityCrossRandomMasking(MaskingStrategy):
    """The v1 strategy; decode-only modalities default to the set's maps (``ModalitySpec.is_map``).

    Args:
        specs, encode_ratio, decode_ratio: as :class:`MaskingStrategy`.
        min_encoded_bandsets: lower bound on ``k_enc`` (reference default 2).
        max_encoded_bandsets: upper bound on ``k_enc`` (None = ``|E|``).
        min_decoded_bandsets, max_decoded_bandsets: bounds on ``k_dec`` (1 and None = ``|P|``).
        decode_only: modality names never encoded; None = every map of ``specs``.
    """

    def __init__(
        self,
        *,
        specs: Sequence[ModalitySpec],
        encode_ratio: float = 0.5,
        decode_ratio: float = 0.5,
        min_encoded_bandsets: int = 2,
        max_encoded_bandsets: int | None = None,
        min_decoded_bandsets: int = 1,
        max_decoded_bandsets: int | None = None,
        decode_only: Collection[str] | None = None,
    ) -> None:
        super().__init__(specs=specs, encode_ratio=encode_ratio, decode_ratio=decode_ratio)
        self.min_encoded = min_encoded_bandsets
        self.max_encoded = max_encoded_bandsets
        self.min_decoded = min_decoded_bandsets
        self.max_decoded = max_decoded_bandsets
        self.decode_only = (
            frozenset(s.name for s in specs if s.is_map) if decode_only is None else frozenset(decode_only)
        )

    def select(
        self, *, present: Sequence[Bandset], rng: np.random.Generator
    ) -> tuple[set[Bandset], set[Bandset]]:
        """Encoded set and decode set for one sample."""
        return select_bandsets(
            present=present,
            decode_only=self.decode_only,
            rng=rng,
            min_encoded=self.min_encoded,
            max_encoded=self.max_encoded,
            min_decoded=self.min_decoded,
            max_decoded=self.max_decoded,
        )

    def apply(self, *, missing: Mapping[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        masks = self.random_masks(missing=missing, rng=rng)
        present = present_bandsets(masks=masks, specs=self.specs, decode_only=self.decode_only)
        encoded, decoded = self.select(present=present, rng=rng)
        masks = apply_bandset_rules(masks=masks, encoded=encoded, decoded=decoded)
        n_enc = sum(int((m == ONLINE).sum()) for m in masks.values())
        n_dec = sum(int((m == DECODER).sum()) for m in masks.values())
        if n_enc == 0 or n_dec == 0:
            for s in self.specs:
                if s.name not in self.decode_only:
                    masks[s.name] = redraw_non_missing(
                        mask=masks[s.name],
                        rng=rng,
                        encode_ratio=self.encode_ratio,
                        decode_ratio=self.decode_ratio,
                    )
        return masks


@register_strategy("modality_cross_random_maps_encodable")
class ModalityCrossRandomMapsEncodable(ModalityCrossRandomMasking):
    """Ablation: as ``modality_cross_random`` with no decode-only modalities (maps may be encoded)."""

    def __init__(self, *, specs: Sequence[ModalitySpec], **kwargs: object) -> None:
        kwargs.pop("decode_only", None)
        super().__init__(specs=specs, decode_only=(), **kwargs)  # type: ignore[arg-type]


__all__ = [
    "ModalityCrossRandomMapsEncodable",
    "ModalityCrossRandomMasking",
    "apply_bandset_rules",
    "present_bandsets",
    "redraw_non_missing",
    "select_bandsets",
]
