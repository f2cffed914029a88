"""The batch the loader hands the model (``docs/batch-schema.md``) and the token roles in its masks."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal

import torch
from torch import Tensor

#: Fill value of a missing pixel in ``Batch.data`` (after normalisation), as the reference.
MISSING_VALUE = -99999.0


class MaskValue(IntEnum):
    """Role of one token in one masked view (recipe §3.5)."""

    ONLINE_ENCODER = 0  # enters the online encoder
    TARGET_ENCODER_ONLY = 1  # neither encoded nor predicted
    DECODER = 2  # a prediction target
    MISSING = 3  # no data: never encoded, decoded or in a loss


@dataclass
class Batch:
    """One batch of ``B`` samples sharing patch size, crop side ``h`` and number of timesteps ``T``.

    Attributes:
        patch_size: patch side ``p`` in 10 m pixels (1..8).
        data: per modality, float32 ``[B, H, W, T_m, C_m]`` with ``H = W = h·p``; ``T_m = T`` for monthly
            modalities and 1 for static ones; missing pixels hold :data:`MISSING_VALUE`.
        timestamps: int64 ``[B, T, 3]``: (day, month0, year) of each period's start; ``month0`` is 0-based.
        masks_a: per modality, int8 ``[B, h, w, T_m, S_m]`` token roles (:class:`MaskValue`) of view a.
        masks_b: the same for view b (independent draw, same data).
        sample_index: int64 ``[B]``, corpus row of each sample.
    """

    patch_size: int
    data: dict[str, Tensor]
    timestamps: Tensor
    masks_a: dict[str, Tensor]
    masks_b: dict[str, Tensor]
    sample_index: Tensor

    @property
    def batch_size(self) -> int:
        return int(self.timestamps.shape[0])

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.data)

    def masks(self, view: Literal["a", "b"]) -> dict[str, Tensor]:
        """The token masks of view ``"a"`` or ``"b"``."""
        if view == "a":
            return self.masks_a
        if view == "b":
            return self.masks_b
        raise ValueError(f"view must be 'a' or 'b', not {view!r}")

    def _map(self, fn) -> Batch:
        return Batch(
            patch_size=self.patch_size,
            data={k: fn(v) for k, v in self.data.items()},
            timestamps=fn(self.timestamps),
            masks_a={k: fn(v) for k, v in self.masks_a.items()},
            masks_b={k: fn(v) for k, v in self.masks_b.items()},
            sample_index=fn(self.sample_index),
        )

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> Batch:
        """A copy with every tensor on ``device`` (``non_blocking`` pays off from pinned memory)."""
        return self._map(lambda t: t.to(device, non_blocking=non_blocking))

    def pin_memory(self) -> Batch:
        """A copy in page-locked memory; ``DataLoader(pin_memory=True)`` calls this on custom batches."""
        return self._map(lambda t: t.pin_memory())
