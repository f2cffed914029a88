"""Composite token encodings (recipe §3.3–§3.4).

Every token gets a vector added whose four quarters (``n = D/4`` each) carry, in order:

1. a learnable per-(modality, bandset) embedding, zero-initialised (all modalities);
2. a 1-D sincos of the time-slot index ``t = 0..T−1`` in the cropped window (monthly modalities);
3. a frozen month table looked up with ``timestamps[..., 1]`` (monthly modalities);
4. a 2-D sincos of the token grid, coordinates × patch size ``p`` (every modality here is spatial).

Quarters that do not apply stay 0. The sincos frequencies are the reference's, ``ω_i =
10000^(−i/(2E))`` for ``i = 0..E/2−1`` — not the usual MAE ``10000^(−2i/E)``; we keep them so weights
and behaviour stay comparable. Tables are computed in float64 and returned as float32 (the reference
computes in float32; the difference is below 1e-5 and only grows with the argument).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from olmoearth_data.modalities import ModalitySpec


def get_1d_sincos(*, pos: Tensor, dim: int) -> Tensor:
    """1-D sincos encoding.

    Args:
        pos: positions, any shape (flattened to ``L``), integer or float.
        dim: encoding size ``E``, even.

    Returns:
        float32 ``[L, E]``: ``[sin(pos·ω), cos(pos·ω)]`` with ``ω_i = 10000^(−i/(2E))``.
    """
    if dim % 2:
        raise ValueError(f"encoding dim must be even, got {dim}")
    omega = torch.arange(dim // 2, dtype=torch.float64, device=pos.device) / (2.0 * dim)
    omega = 1.0 / 10000.0**omega
    angles = pos.reshape(-1).to(torch.float64)[:, None] * omega[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1).to(torch.float32)


def get_2d_sincos(
    *, grid_hw: tuple[int, int], res: float, dim: int, device: torch.device | None = None
) -> Tensor:
    """2-D sincos encoding of a token grid.

    Args:
        grid_hw: ``(h, w)`` tokens.
        res: scale applied to both token coordinates (the model passes the patch size ``p``).
        dim: encoding size ``E``, divisible by 4; the first ``E/2`` dims encode the column (x), the
            last ``E/2`` the row (y), each a 1-D encoding of size ``E/2``.
        device: where to build it.

    Returns:
        float32 ``[h·w, E]``, row-major (token index = row·w + col).
    """
    if dim % 4:
        raise ValueError(f"2-D encoding dim must be divisible by 4, got {dim}")
    h, w = grid_hw
    rows = torch.arange(h, dtype=torch.float64, device=device).repeat_interleave(w) * res
    cols = torch.arange(w, dtype=torch.float64, device=device).repeat(h) * res
    return torch.cat([get_1d_sincos(pos=cols, dim=dim // 2), get_1d_sincos(pos=rows, dim=dim // 2)], dim=1)


def get_month_table(*, dim: int) -> Tensor:
    """Month encoding table.

    Returns:
        float32 ``[12, E]``; row ``m`` (0-based month) is ``sin(2πm/12)`` repeated ``E/2`` times followed
        by ``cos(2πm/12)`` repeated ``E/2`` times.
    """
    if dim % 2:
        raise ValueError(f"encoding dim must be even, got {dim}")
    angles = torch.arange(12, dtype=torch.float64) * (2.0 * math.pi / 12.0)
    half = dim // 2
    table = torch.cat([angles.sin()[:, None].expand(12, half), angles.cos()[:, None].expand(12, half)], 1)
    return table.to(torch.float32)


class CompositeEncodings(nn.Module):
    """The four-quarter encoding of recipe §3.3; the encoder and the decoder each own one.

    Parameters: ``bandset_embed[m]`` ``[S_m, D/4]`` (zero-init, trainable) and ``month_table`` (frozen
    ``nn.Embedding``, counted in the parameter totals as the reference does).
    """

    def __init__(self, *, specs: Sequence[ModalitySpec], dim: int) -> None:
        super().__init__()
        if dim % 16:
            # D/4 per quarter, and the spatial quarter splits again into x/y halves of sin/cos
            raise ValueError(f"model dim must be divisible by 16, got {dim}")
        self.dim = dim
        self.quarter = dim // 4
        self.specs = {s.name: s for s in specs}
        self.bandset_embed = nn.ParameterDict(
            {s.name: nn.Parameter(torch.zeros(s.num_bandsets, self.quarter)) for s in specs}
        )
        self.month_table = nn.Embedding.from_pretrained(get_month_table(dim=self.quarter), freeze=True)

    def forward(
        self, *, modality: str, grid: tuple[int, int, int, int, int], timestamps: Tensor, patch_size: int
    ) -> Tensor:
        """Encoding for every token of one modality.

        Args:
            modality: modality name.
            grid: token grid ``(B, h, w, T_m, S_m)``.
            timestamps: int ``[B, T, 3]`` (day, month0, year); only ``month0`` of the first ``T_m``
                periods is read, and only for monthly modalities.
            patch_size: ``p`` in 10 m pixels; spatial coordinates are token index × p (GSD ratio).

        Returns:
            float32 ``[B, h, w, T_m, S_m, D]``.
        """
        B, h, w, T, S = grid
        n = self.quarter
        device = self.bandset_embed[modality].device
        full = (B, h, w, T, S, n)
        parts = [self.bandset_embed[modality].float().view(1, 1, 1, 1, S, n).expand(full)]
        if self.specs[modality].is_multitemporal:
            slot = get_1d_sincos(pos=torch.arange(T, device=device), dim=n)
            months = self.month_table(timestamps[:, :T, 1].long().to(device)).float()
            parts.append(slot.view(1, 1, 1, T, 1, n).expand(full))
            parts.append(months.view(B, 1, 1, T, 1, n).expand(full))
        else:
            zeros = torch.zeros((1, 1, 1, 1, 1, 2 * n), device=device)
            parts.append(zeros.expand(B, h, w, T, S, 2 * n))
        space = get_2d_sincos(grid_hw=(h, w), res=float(patch_size), dim=n, device=device)
        parts.append(space.view(1, h, w, 1, 1, n).expand(full))
        return torch.cat(parts, dim=-1)
