"""Token budget: how many timesteps a batch gets for a given crop (recipe §8.4, docs/batch-schema.md).

The reference fixes a budget of 2,250 token slots per sample and takes the largest ``T`` (at most 12)
that fits, counting every modality of the set whether or not a sample has it. Generalised to any
modality set: static modalities cost ``h²·S_static`` slots once, monthly ones ``h²·S_monthly`` per
timestep, so ``T = min(12, ⌊(budget − h²·S_static) / (h²·S_monthly)⌋)``, raised to 1 when the static
modalities alone exceed the budget. For v1 (``S_static = S_monthly = 6``) this is the reference's
``min(12, ⌊2250/(6h²)⌋ − 1)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from olmoearth_data.modalities import NUM_PERIODS, ModalitySpec

#: Token slots per sample the reference sizes ``T`` against.
TOKEN_BUDGET = 2250


def bandset_counts(*, specs: Sequence[ModalitySpec]) -> tuple[int, int]:
    """``(S_monthly, S_static)``: bandsets of the monthly and of the static modalities of ``specs``."""
    monthly = sum(s.num_bandsets for s in specs if s.is_multitemporal)
    static = sum(s.num_bandsets for s in specs if not s.is_multitemporal)
    return monthly, static


def timesteps_for_budget(
    *, h: int, specs: Sequence[ModalitySpec], budget: int = TOKEN_BUDGET, max_timesteps: int = NUM_PERIODS
) -> int:
    """Number of timesteps ``T`` (1..``max_timesteps``) for a crop of ``h × h`` tokens.

    Args:
        h: crop side in tokens (the reference draws 1..12).
        specs: the modality set; every modality counts, present in a sample or not.
        budget: token slots per sample.
        max_timesteps: upper bound (12 monthly periods).
    """
    if h < 1:
        raise ValueError(f"crop side must be ≥ 1 token, got {h}")
    monthly, static = bandset_counts(specs=specs)
    if monthly == 0:
        return 1  # nothing varies in time: T only indexes the (absent) monthly axis
    t = (budget - h * h * static) // (h * h * monthly)
    return int(max(1, min(max_timesteps, t)))


def token_slots(*, h: int, timesteps: int, specs: Sequence[ModalitySpec]) -> int:
    """Token slots per sample, ``h²·(T·S_monthly + S_static)``, missing and map tokens included."""
    monthly, static = bandset_counts(specs=specs)
    return h * h * (timesteps * monthly + static)
