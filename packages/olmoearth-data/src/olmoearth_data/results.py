"""What materialising one sample produces: per modality, per-bandset arrays plus presence and reasons."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from olmoearth_data.missing import MissingReason, SampleStatus
from olmoearth_data.outages import Outage


@dataclass
class ModalityResult:
    """One modality of one sample.

    Attributes:
        arrays: bandset name → ``[T, C, H, W]`` in the modality's storage dtype (T = 12 monthly, 1 static),
            nodata where missing.
        present: bool ``[T]``; whether each period (or the static layer) has data.
        reason: uint8 ``[T]`` :class:`MissingReason` codes.
        item_ids: per period, the ids of the items that contributed pixels, in merge order.
        extra: per-modality facts worth indexing (e.g. ``{"cdl_year": 2021}``).
    """

    arrays: dict[str, np.ndarray]
    present: np.ndarray
    reason: np.ndarray
    item_ids: list[list[str]] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def any_present(self) -> bool:
        return bool(self.present.any())


@dataclass
class SampleResult:
    """Everything written for one corpus row.

    ``outage``: the service failure that left the sample ``PENDING`` (its ``modalities`` then hold only
    those finished before it); None otherwise.
    """

    index: int
    status: SampleStatus
    status_reason: str
    modalities: dict[str, ModalityResult]
    outage: Outage | None = None


def empty_reasons(n: int, reason: MissingReason) -> np.ndarray:
    return np.full(n, int(reason), dtype=np.uint8)
