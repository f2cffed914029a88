"""Token bookkeeping shared by encoder, decoder and losses: flatten per-modality grids into one
sequence, pick the tokens of one role into a padded batch, pack them without padding
(:class:`Packing`), and scatter them back.

All of it is batched tensor work — no Python loop over samples or tokens — so it runs on the GPU
without host round-trips beyond the per-sample counts (read with the step's other lengths in one
sync, :func:`token_lengths`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
class Packing:
    """The rows of a left-aligned padded batch ``[B, n]`` that are present, packed as ``[T, ...]``.

    Row ``r`` of the packed tensor is position ``pos[r]`` of sample ``sample[r]``; samples follow each
    other in batch order. Built from the sample counts alone (cumsum + searchsorted), so it needs no
    host sync when ``T`` is known.

    Attributes:
        sample: int64 ``[T]``: sample of each packed row.
        flat: int64 ``[T]``: its row in the flattened padded layout ``[B·n]`` (``sample·n + pos``).
        mask: bool ``[B, n]``: True where a padded position holds a packed row (left-aligned).
        batch: ``B``.
        length: ``n``.
        counts: packed rows per sample, on the host (read with the step's other lengths in the one
            sync), so per-sample work can split the packed rows without a further read.
    """

    sample: Tensor
    flat: Tensor
    mask: Tensor
    batch: int
    length: int
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.sample.shape[0]

    def pack(self, x: Tensor) -> Tensor:
        """``[B, n, *F]`` → ``[T, *F]``."""
        return x.flatten(0, 1)[self.flat]

    def unpack(self, x: Tensor) -> Tensor:
        """``[T, *F]`` → ``[B, n, *F]`` with zeros at the absent positions."""
        out = x.new_zeros(self.batch * self.length, *x.shape[1:])
        return out.index_copy(0, self.flat, x).view(self.batch, self.length, *x.shape[1:])


def pack_rows(*, mask: Tensor, counts: Sequence[int]) -> Packing:
    """:class:`Packing` of the True positions of a left-aligned bool ``mask`` ``[B, n]``.

    Args:
        mask: every row's True positions come first (as :class:`Selection.valid` or
            :func:`~olmoearth_model.nn.attention.safe_key_mask` of it).
        counts: ``mask.sum(1)`` on the host, known to the caller (reading it here would be a sync).
    """
    B, n = mask.shape
    on_device = mask.sum(dim=1)
    ends = on_device.cumsum(0)
    rows = torch.arange(sum(counts), device=mask.device)
    sample = torch.searchsorted(ends, rows, right=True)
    pos = rows - (ends - on_device)[sample]
    return Packing(sample=sample, flat=sample * n + pos, mask=mask, batch=B, length=n, counts=tuple(counts))


def select_packed(
    *, keep: Tensor, counts: Sequence[int] | None = None, stand_in: bool = False
) -> tuple[Selection, Packing]:
    """:func:`select_tokens` plus the :class:`Packing` of the selected tokens.

    Args:
        keep: bool ``[B, N]``.
        counts: ``keep.sum(1)`` on the host, if known (``TokenLengths.encoded_counts`` /
            ``decoded_counts``); None reads it here (one host sync).
        stand_in: a sample without any selected token keeps its first padding position as one
            stand-in row (as :func:`~olmoearth_model.nn.attention.safe_key_mask` lets it be attended
            when padded), so every sample has a key.

    Returns:
        The :class:`Selection` and the packing over ``selection.valid`` (plus the stand-ins).
    """
    on_device = keep.sum(dim=1)
    if counts is None:
        counts = on_device.tolist()  # the one host read when the caller knows nothing
    sel = select_tokens(keep=keep, length=max(counts, default=1))
    mask = sel.valid
    if stand_in:
        first = torch.zeros_like(mask)
        first[:, 0] = on_device == 0
        mask = mask | first
        counts = [max(1, c) for c in counts]
    return sel, pack_rows(mask=mask, counts=counts)


def gather_packed(*, x: Tensor, selection: Selection, packing: Packing) -> Tensor:
    """``[B, N, *F]`` → ``[T, *F]``: the packed rows' tokens, read straight from the flat axis."""
    return x[packing.sample, selection.index.flatten()[packing.flat]]


def scatter_packed(*, x: Tensor, selection: Selection, packing: Packing, num_tokens: int) -> Tensor:
    """``[T, D]`` → ``[B, N, D]``: selected tokens go back to their positions, zeros elsewhere
    (stand-in rows are written as zeros: they sit at non-selected positions)."""
    real = selection.valid.flatten()[packing.flat]
    values = torch.where(real[:, None], x, torch.zeros((), dtype=x.dtype, device=x.device))
    out = x.new_zeros(packing.batch, num_tokens, x.shape[-1])
    return out.index_put((packing.sample, selection.index.flatten()[packing.flat]), values)


@dataclass(frozen=True)
class TokenLengths:
    """Padded lengths and packed totals of one masked view, read from its masks in a single host sync.

    Attributes:
        encoded: most ONLINE_ENCODER tokens of a sample (encoder sequence, decoder context).
        decoded: most DECODER tokens of a sample over all modalities (decoder queries).
        decoded_per_modality: most DECODER tokens of a sample, per modality (the patch losses).
        encoded_counts: ONLINE_ENCODER tokens of each sample (the packed layout's split).
        decoded_counts: DECODER tokens of each sample.
    """

    encoded: int
    decoded: int
    decoded_per_modality: dict[str, int]
    encoded_counts: tuple[int, ...] | None = None
    decoded_counts: tuple[int, ...] | None = None


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
        e, d = torch.stack(enc).sum(0), torch.stack(dec).sum(0)
        rows += [e, d, torch.stack([x.max() for x in dec])]
    values = torch.cat(rows).tolist()  # the one host read
    out, i = [], 0
    for masks in views:
        B = next(iter(masks.values())).shape[0]
        e, d = tuple(values[i : i + B]), tuple(values[i + B : i + 2 * B])
        per_modality = dict(zip(masks, values[i + 2 * B : i + 2 * B + len(masks)]))
        out.append(
            TokenLengths(
                encoded=max(e, default=0),
                decoded=max(d, default=0),
                decoded_per_modality=per_modality,
                encoded_counts=e,
                decoded_counts=d,
            )
        )
        i += 2 * B + len(masks)
    return out
