"""Token bookkeeping shared by encoder, decoder and losses: flatten per-modality grids into one
sequence, pick the tokens of one role into a padded batch, and scatter them back.

All of it is batched tensor work — no Python loop over samples or tokens — so it runs on the GPU
without host round-trips beyond one ``max`` for the padded length.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Layout:
    """Where each modality sits in the flattened token axis.

    Attributes:
        names: modality names in sequence order.
        grids: per modality the token grid ``(h, w, T_m, S_m)``.
    """

    names: tuple[str, ...]
    grids: tuple[tuple[int, int, int, int], ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(h * w * t * s for h, w, t, s in self.grids)

    @property
    def num_tokens(self) -> int:
        return sum(self.sizes)


def flatten_tokens(*, tokens: Mapping[str, Tensor]) -> tuple[Tensor, Layout]:
    """Concatenate per-modality grids in (h, w, t, bandset) order (recipe §3.2).

    Args:
        tokens: per modality ``[B, h, w, T_m, S_m, *F]`` (``F`` = feature dims, may be empty for masks).

    Returns:
        ``[B, N, *F]`` and the :class:`Layout` to undo it.
    """
    names = tuple(tokens)
    grids = tuple(tuple(tokens[m].shape[1:5]) for m in names)
    flat = [tokens[m].flatten(1, 4) for m in names]
    return torch.cat(flat, dim=1), Layout(names=names, grids=grids)  # type: ignore[arg-type]


def unflatten_tokens(*, x: Tensor, layout: Layout) -> dict[str, Tensor]:
    """Inverse of :func:`flatten_tokens`: ``[B, N, *F]`` → per modality ``[B, h, w, T_m, S_m, *F]``."""
    parts = torch.split(x, list(layout.sizes), dim=1)
    return {
        m: p.reshape(x.shape[0], *grid, *x.shape[2:]) for m, p, grid in zip(layout.names, parts, layout.grids)
    }


@dataclass(frozen=True)
class Selection:
    """Positions of the selected tokens of each sample, left-aligned and padded.

    Attributes:
        index: int64 ``[B, n]``: positions in the flat axis; the first ``counts[b]`` are selected
            tokens in their original order, the rest are distinct non-selected positions (padding).
        valid: bool ``[B, n]``: True for selected tokens.
        counts: int64 ``[B]``: selected tokens per sample.
    """

    index: Tensor
    valid: Tensor
    counts: Tensor


def select_tokens(*, keep: Tensor, length: int | None = None) -> Selection:
    """Left-align the ``keep`` tokens of every sample (stable sort) and truncate to the longest.

    Args:
        keep: bool ``[B, N]``.
        length: the longest sample's count when the caller knows it (:class:`TokenLengths`: all of a
            step's lengths read in one host sync); None reads ``counts.max()`` here (one sync).

    Returns:
        A :class:`Selection` with ``n = max(1, max_b counts[b])`` (at least 1 so downstream shapes stay
        valid when nothing is selected).
    """
    counts = keep.sum(dim=1)
    order = torch.sort(keep.to(torch.int8), dim=1, descending=True, stable=True).indices
    if length is None:
        length = int(counts.max()) if keep.numel() else 1
    n = max(1, length)
    n = min(n, keep.shape[1])
    index = order[:, :n]
    valid = torch.arange(n, device=keep.device)[None, :] < counts[:, None]
    return Selection(index=index, valid=valid, counts=counts)


def gather_tokens(*, x: Tensor, selection: Selection) -> Tensor:
    """``[B, N, D]`` → ``[B, n, D]`` at ``selection.index`` (padding rows hold whatever was there)."""
    return torch.gather(x, 1, selection.index[..., None].expand(-1, -1, x.shape[-1]))


def scatter_tokens(*, x: Tensor, selection: Selection, num_tokens: int) -> Tensor:
    """``[B, n, D]`` → ``[B, N, D]``: selected tokens go back to their positions, zeros elsewhere."""
    B, _, D = x.shape
    out = x.new_zeros(B, num_tokens, D)
    # padding rows point at distinct non-selected positions, so writing zeros there is harmless
    values = torch.where(selection.valid[..., None], x, torch.zeros((), dtype=x.dtype, device=x.device))
    return out.scatter(1, selection.index[..., None].expand(-1, -1, D), values)


@dataclass(frozen=True)
class TokenLengths:
    """Padded lengths of one masked view, read from its masks in a single host sync.

    Attributes:
        encoded: most ONLINE_ENCODER tokens of a sample (encoder sequence, decoder context).
        decoded: most DECODER tokens of a sample over all modalities (decoder queries).
        decoded_per_modality: most DECODER tokens of a sample, per modality (the patch losses).
    """

    encoded: int
    decoded: int
    decoded_per_modality: dict[str, int]


def token_lengths(
    views: list[dict[str, Tensor]], *, encoder: int = 0, decoder: int = 2
) -> list[TokenLengths]:
    """:class:`TokenLengths` of each view's per-modality masks ``[B, ...]``, in one ``tolist()``.

    ``encoder``/``decoder`` are the mask values of encoded and decoded tokens (``MaskValue``).
    """
    rows = []
    for masks in views:
        enc = [(m == encoder).flatten(1).sum(1) for m in masks.values()]
        dec = [(m == decoder).flatten(1).sum(1) for m in masks.values()]
        rows += [torch.stack(enc).sum(0).max(), torch.stack(dec).sum(0).max(), *(d.max() for d in dec)]
    values = torch.stack(rows).tolist()  # the one host read
    out, i = [], 0
    for masks in views:
        per_modality = dict(zip(masks, (int(v) for v in values[i + 2 : i + 2 + len(masks)])))
        out.append(
            TokenLengths(
                encoded=int(values[i]), decoded=int(values[i + 1]), decoded_per_modality=per_modality
            )
        )
        i += 2 + len(masks)
    return out
