"""Masking: token roles of one view of one sample, drawn on CPU in loader workers.

Example::

    strategy = build_masking(name="modality_cross_random", specs=specs)
    missing = sample_token_missing(data=pixels, specs=specs, patch_size=p)  # per modality [h, w, T, S]
    masks = strategy(missing=missing, rng=rng)  # per modality int8 [h, w, T, S]

Importing this package registers every strategy (one module each).
"""

from olmoearth_model.masking.base import MaskingStrategy, stack_masks
from olmoearth_model.masking.missing import sample_token_missing, token_missing
from olmoearth_model.masking.modality_cross import (
    ModalityCrossRandomMapsEncodable,
    ModalityCrossRandomMasking,
    apply_bandset_rules,
    present_bandsets,
    select_bandsets,
)
from olmoearth_model.masking.random_strategy import RandomMasking
from olmoearth_model.masking.registry import MASKING_STRATEGIES, build_masking, register_strategy
from olmoearth_model.masking.space_strategy import SpaceMasking
from olmoearth_model.masking.time_strategy import TimeMasking

__all__ = [
    "MASKING_STRATEGIES",
    "MaskingStrategy",
    "ModalityCrossRandomMapsEncodable",
    "ModalityCrossRandomMasking",
    "RandomMasking",
    "SpaceMasking",
    "TimeMasking",
    "apply_bandset_rules",
    "build_masking",
    "present_bandsets",
    "register_strategy",
    "sample_token_missing",
    "select_bandsets",
    "stack_masks",
    "token_missing",
]
