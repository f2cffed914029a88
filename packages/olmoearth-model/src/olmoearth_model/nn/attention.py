"""Pre-LN transformer block on ``F.scaled_dot_product_attention`` (recipe §4.2).

``x ← x + DropPath(Attn(LN1(x), ctx)); x ← x + DropPath(MLP(LN2(x)))``: separate q/k/v ``Linear`` with
bias, output projection, MLP 4× with exact (erf) GELU, LayerNorm eps 1e-5, no qk-norm, no LayerScale,
no dropout inside attention or MLP. In cross-attention mode the queries come from ``LN1(x)`` and the
keys/values from the context ``y`` *without* normalisation, as the reference decoder does (§4.4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def init_linear_xavier(module: nn.Module) -> None:
    """Xavier-uniform weight and zero bias for every ``nn.Linear`` under ``module`` (recipe §4.2).

    Conv2d patch embeddings keep PyTorch's default init, as in the reference.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class DropPath(nn.Module):
    """Per-sample stochastic depth: drops the whole residual branch of a sample with probability ``p``."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``[B, ...]``; survivors are scaled by ``1/(1−p)`` so the expectation is unchanged."""
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        mask = x.new_empty(shape).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v projections and a boolean key-padding mask."""

    def __init__(self, *, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q = nn.Linear(dim, dim, bias=True)
        self.k = nn.Linear(dim, dim, bias=True)
        self.v = nn.Linear(dim, dim, bias=True)
        self.proj = nn.Linear(dim, dim, bias=True)

    def _heads(self, t: Tensor) -> Tensor:
        B, N, _ = t.shape
        return t.view(B, N, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, *, x: Tensor, context: Tensor | None = None, key_mask: Tensor | None = None) -> Tensor:
        """Attend from ``x`` to ``context`` (``x`` itself when None).

        Args:
            x: ``[B, Nq, D]`` queries.
            context: ``[B, Nk, D]`` keys/values, or None for self-attention.
            key_mask: bool ``[B, Nk]``, True = may be attended. Every row needs at least one True, or
                SDPA returns NaN.

        Returns:
            ``[B, Nq, D]``.
        """
        ctx = x if context is None else context
        q, k, v = self._heads(self.q(x)), self._heads(self.k(ctx)), self._heads(self.v(ctx))
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # scale = head_dim^-0.5
        B, _, Nq, _ = out.shape
        return self.proj(out.transpose(1, 2).reshape(B, Nq, -1))


class Mlp(nn.Module):
    """``Linear(D, r·D) → GELU(erf) → Linear(r·D, D)``."""

    def __init__(self, *, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-LN transformer block; ``cross_attn=True`` attends to an un-normalised context instead of itself."""

    def __init__(
        self,
        *,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        cross_attn: bool = False,
    ) -> None:
        super().__init__()
        self.cross_attn = cross_attn
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim=dim, num_heads=num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim=dim, hidden=int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, *, x: Tensor, key_mask: Tensor | None = None, context: Tensor | None = None) -> Tensor:
        """One block.

        Args:
            x: ``[B, N, D]`` tokens (queries).
            key_mask: bool ``[B, Nk]`` over the keys (``x`` itself, or ``context`` in cross mode).
            context: ``[B, Nk, D]``, required in cross-attention mode and never normalised here.

        Returns:
            ``[B, N, D]``.
        """
        if self.cross_attn and context is None:
            raise ValueError("a cross-attention block needs a context")
        ctx = context if self.cross_attn else None
        x = x + self.drop_path(self.attn(x=self.norm1(x), context=ctx, key_mask=key_mask))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def safe_key_mask(key_mask: Tensor) -> Tensor:
    """Let every row attend to at least its first key.

    A sample with no valid key would give NaN through SDPA (and NaN gradients into shared weights);
    its outputs are discarded anyway, so letting it see one padding key is harmless.
    """
    # no data-dependent branch: keeps it free of host syncs on GPU
    first = torch.zeros_like(key_mask)
    first[:, 0] = ~key_mask.any(dim=1)
    return key_mask | first
