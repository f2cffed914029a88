"""Pre-LN transformer block on ``F.scaled_dot_product_attention`` (recipe §4.2).

``x ← x + DropPath(Attn(LN1(x), ctx)); x ← x + DropPath(MLP(LN2(x)))``: separate q/k/v ``Linear`` with
bias, output projection, MLP 4× with exact (erf) GELU, LayerNorm eps 1e-5, no qk-norm, no LayerScale,
no dropout inside attention or MLP. In cross-attention mode the queries come from ``LN1(x)`` and the
keys/values from the context ``y`` *without* normalisation, as the reference decoder does (§4.4).

Two layouts, the same numbers:

- padded: ``x`` ``[B, N, D]`` with a key-padding mask;
- packed (given a :class:`~olmoearth_model.nn.tokens.Packing`): ``x`` ``[T, D]`` holds only the
  samples' real tokens back to back, so LayerNorms, projections, MLP, residuals and DropPath do no
  padding work. Attention stays block-diagonal per sample. On CPU the packed q/k/v are split by the
  packing's host-side counts and each sample runs its own unmasked SDPA (``Σ n_b²`` work instead of
  ``B·n²``: half the attention time on the benchmark batch); elsewhere they are scattered into a
  zero-padded ``[B, H, n, hd]`` just for SDPA (key mask = the packing's mask) and gathered back, one
  launch instead of ``B``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from olmoearth_model.nn.tokens import Packing

# packed attention: one SDPA per sample on these device types, one padded SDPA elsewhere
PER_SAMPLE_DEVICES: tuple[str, ...] = ("cpu",)


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

    def forward(self, x: Tensor, *, packing: Packing | None = None) -> Tensor:
        """``x``: ``[B, ...]``, or packed ``[T, ...]`` with its ``packing`` (one draw per sample, spread
        over the sample's rows: the same draws as padded). Survivors are scaled by ``1/(1−p)`` so the
        expectation is unchanged."""
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        batch = x.shape[0] if packing is None else packing.batch
        mask = x.new_empty((batch,) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        if packing is not None:
            mask = mask[packing.sample]
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

    def forward(
        self,
        *,
        x: Tensor,
        context: Tensor | None = None,
        key_mask: Tensor | None = None,
        packing: Packing | None = None,
        context_packing: Packing | None = None,
    ) -> Tensor:
        """Attend from ``x`` to ``context`` (``x`` itself when None).

        Args:
            x: ``[B, Nq, D]`` queries, or packed ``[Tq, D]`` with ``packing``.
            context: ``[B, Nk, D]`` keys/values (packed ``[Tk, D]`` with ``context_packing``), or None
                for self-attention.
            key_mask: bool ``[B, Nk]``, True = may be attended (padded layout only). Every row needs at
                least one True, or SDPA returns NaN.
            packing: the queries' :class:`Packing`; packed mode when given.
            context_packing: the context's (the queries' own in self-attention); its mask is the key
                mask and needs a True in every row.

        Returns:
            ``[B, Nq, D]``, or ``[Tq, D]`` when packed.
        """
        ctx = x if context is None else context
        q, k, v = self.q(x), self.k(ctx), self.v(ctx)
        if packing is not None:
            kv_packing = packing if context is None else context_packing
            if kv_packing is None:
                raise ValueError("packed cross-attention needs the context's packing")
            if q.device.type in PER_SAMPLE_DEVICES:
                return self.proj(self._per_sample(q, k, v, packing.counts, kv_packing.counts))
            # padded only for SDPA: a sample attends to its own keys, nothing else
            q = packing.unpack(q)
            k, v = kv_packing.unpack(k), kv_packing.unpack(v)
            key_mask = kv_packing.mask
        q, k, v = self._heads(q), self._heads(k), self._heads(v)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # scale = head_dim^-0.5
        B, _, Nq, _ = out.shape
        out = out.transpose(1, 2).reshape(B, Nq, -1)
        return self.proj(out if packing is None else packing.pack(out))

    def _per_sample(
        self, q: Tensor, k: Tensor, v: Tensor, q_counts: tuple[int, ...], kv_counts: tuple[int, ...]
    ) -> Tensor:
        """Packed ``[Tq, D]`` queries against packed ``[Tk, D]`` keys/values, one SDPA per sample."""
        H, hd = self.num_heads, self.head_dim
        outs = []
        for qs, ks, vs in zip(q.split(q_counts), k.split(kv_counts), v.split(kv_counts), strict=True):
            if qs.shape[0]:
                # [1, H, n, hd]: 4-D keeps SDPA on its fused CPU kernel (3-D falls back to the math one)
                heads = [t.view(1, -1, H, hd).transpose(1, 2) for t in (qs, ks, vs)]
                qs = F.scaled_dot_product_attention(*heads)[0].transpose(0, 1).reshape(-1, H * hd)
            outs.append(qs)
        return torch.cat(outs)


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

    def forward(
        self,
        *,
        x: Tensor,
        key_mask: Tensor | None = None,
        context: Tensor | None = None,
        packing: Packing | None = None,
        context_packing: Packing | None = None,
    ) -> Tensor:
        """One block.

        Args:
            x: ``[B, N, D]`` tokens (queries), or packed ``[T, D]`` with ``packing``.
            key_mask: bool ``[B, Nk]`` over the keys (``x`` itself, or ``context`` in cross mode);
                padded layout only.
            context: ``[B, Nk, D]`` (packed ``[Tk, D]`` with ``context_packing``), required in
                cross-attention mode and never normalised here.
            packing: packed mode: every token-wise op runs on the ``T`` real tokens only.
            context_packing: the context's packing (cross-attention in packed mode).

        Returns:
            ``[B, N, D]``, or ``[T, D]`` when packed.
        """
        if self.cross_attn and context is None:
            raise ValueError("a cross-attention block needs a context")
        ctx = context if self.cross_attn else None
        attn = self.attn(
            x=self.norm1(x), context=ctx, key_mask=key_mask, packing=packing, context_packing=context_packing
        )
        x = x + self.drop_path(attn, packing=packing)
        return x + self.drop_path(self.mlp(self.norm2(x)), packing=packing)


def safe_key_mask(key_mask: Tensor) -> Tensor:
    """Let every row attend to at least its first key.

    A sample with no valid key would give NaN through SDPA (and NaN gradients into shared weights);
    its outputs are discarded anyway, so letting it see one padding key is harmless.
    """
    # no data-dependent branch: keeps it free of host syncs on GPU
    first = torch.zeros_like(key_mask)
    first[:, 0] = ~key_mask.any(dim=1)
    return key_mask | first
