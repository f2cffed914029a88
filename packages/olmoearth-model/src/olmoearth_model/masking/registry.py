"""Masking strategies by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from olmoearth_data.modalities import ModalitySpec
from olmoearth_model.masking.base import MaskingStrategy

MASKING_STRATEGIES: dict[str, type[MaskingStrategy]] = {}


def register_strategy(name: str) -> Callable[[type[MaskingStrategy]], type[MaskingStrategy]]:
    """Class decorator: make a strategy buildable as ``build_masking(name=...)``."""

    def deco(cls: type[MaskingStrategy]) -> type[MaskingStrategy]:
        if name in MASKING_STRATEGIES:
            raise ValueError(f"masking strategy {name!r} registered twice")
        cls.name = name
        MASKING_STRATEGIES[name] = cls
        return cls

    return deco


def build_masking(*, name: str, specs: Sequence[ModalitySpec], **kwargs: Any) -> MaskingStrategy:
    """The strategy called ``name`` for the modality set ``specs`` (extra options as keywords)."""
    try:
        cls = MASKING_STRATEGIES[name]
    except KeyError:
        raise KeyError(f"unknown masking strategy {name!r}; known: {sorted(MASKING_STRATEGIES)}") from None
    return cls(specs=specs, **kwargs)
