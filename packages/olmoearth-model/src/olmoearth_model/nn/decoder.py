"""Cross-attention-only predictor (recipe §4.4).

1. Encoder output → ``input_norm`` (LayerNorm D_enc) → ``Linear(D_enc, D_dec)``.
2. DECODER positions are replaced by the learnable ``mask_token`` (zero-init).
3. The decoder's own composite encodings are added to every token.
4. Queries = DECODER tokens (padded); context = ONLINE_ENCODER tokens (padded, key-padding mask);
   TARGET_ENCODER_ONLY and MISSING tokens are dropped.
5. ``depth`` cross-attention blocks: queries from LN1(x), keys/values from the context *without*
   normalisation; the context is never updated and there is no self-attention among queries.
6. ``Linear(D_dec, D_enc)(LayerNorm(x))``, one norm and one linear shared by every bandset.

Steps 1–3 are only computed for the tokens that survive step 4 — the same numbers as the reference,
which transforms every token and then discards most of them. The output holds predictions at
DECODER positions and zeros elsewhere (the reference leaves projected context there; nothing reads it).

Queries and context are packed (``packed=True``, the default): ``[Σ_b d_b, D]`` queries and
``[Σ_b max(1, e_b), D]`` context, so steps 1–3, the blocks' token-wise work and step 6 skip padding;
cross-attention stays per sample (:mod:`~olmoearth_model.nn.attention`). A sample without context
keeps one stand-in key (its first padding position, i.e. an all-zero latent), exactly what the padded
layout's :func:`~olmoearth_model.nn.attention.safe_key_mask` lets it attend. ``packed=False`` runs the
former padded batches — the same numbers up to float rounding, kept as the tests' reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from olmoearth_data.modalities import ModalitySpec
from olmoearth_model.batch import MaskValue
from olmoearth_model.nn.attention import Block, init_linear_xavier, safe_key_mask
from olmoearth_model.nn.encodings import CompositeEncodings
from olmoearth_model.nn.tokens import (
    Layout,
    TokenLengths,
    flatten_tokens,
    gather_packed,
    gather_tokens,
    scatter_packed,
    scatter_tokens,
    select_packed,
    select_tokens,
    unflatten_tokens,
)


class Decoder(nn.Module):
    """Predicts the latent of every DECODER token from the encoded (ONLINE_ENCODER) tokens."""

    def __init__(
        self,
        *,
        specs: Sequence[ModalitySpec],
        encoder_dim: int,
        dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        packed: bool = True,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.packed = packed  # plain attribute: no state, checkpoints are the same either way
        self.encoder_dim = encoder_dim
        self.input_norm = nn.LayerNorm(encoder_dim, eps=1e-5)
        self.encoder_to_decoder = nn.Linear(encoder_dim, dim, bias=True)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.encodings = CompositeEncodings(specs=specs, dim=dim)
        self.blocks = nn.ModuleList(
            Block(dim=dim, num_heads=num_heads, mlp_ratio=mlp_ratio, drop_path=drop_path, cross_attn=True)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.to_output = nn.Linear(dim, encoder_dim, bias=True)
        init_linear_xavier(self)

    def forward(
        self,
        *,
        latent: Mapping[str, Tensor],
        masks: Mapping[str, Tensor],
        timestamps: Tensor,
        patch_size: int,
        lengths: TokenLengths | None = None,
    ) -> dict[str, Tensor]:
        """Predict one view.

        Args:
            latent: per modality ``[B, h, w, T_m, S_m, D_enc]`` encoder output.
            masks: per modality int ``[B, h, w, T_m, S_m]`` token roles of the same view.
            timestamps: int ``[B, T, 3]`` (day, month0, year).
            patch_size: ``p`` in 10 m pixels (scales the spatial encoding).
            lengths: the view's lengths and per-sample counts, if known (then no host sync happens
                here; otherwise two).

        Returns:
            per modality ``[B, h, w, T_m, S_m, D_enc]``: predictions at DECODER positions, 0 elsewhere.
        """
        enc = {
            m: self.encodings(
                modality=m, grid=tuple(x.shape[:5]), timestamps=timestamps, patch_size=patch_size
            )
            for m, x in latent.items()
        }
        x, layout = flatten_tokens(tokens=latent)
        pos, _ = flatten_tokens(tokens=enc)
        flat_mask, _ = flatten_tokens(tokens={m: masks[m] for m in layout.names})
        # MISSING and TARGET_ENCODER_ONLY tokens take part in neither set
        if self.packed:
            return self._forward_packed(x=x, pos=pos, flat_mask=flat_mask, layout=layout, lengths=lengths)
        ctx_sel = select_tokens(
            keep=flat_mask == MaskValue.ONLINE_ENCODER, length=lengths and lengths.encoded
        )
        qry_sel = select_tokens(keep=flat_mask == MaskValue.DECODER, length=lengths and lengths.decoded)

        context = self.encoder_to_decoder(self.input_norm(gather_tokens(x=x, selection=ctx_sel)))
        context = context + gather_tokens(x=pos, selection=ctx_sel)
        queries = self.mask_token + gather_tokens(x=pos, selection=qry_sel)

        key_mask = safe_key_mask(ctx_sel.valid)
        for block in self.blocks:
            queries = block(x=queries, context=context, key_mask=key_mask)
        pred = self.to_output(self.norm(queries))
        out = scatter_tokens(x=pred, selection=qry_sel, num_tokens=layout.num_tokens)
        return unflatten_tokens(x=out, layout=layout)

    def _forward_packed(
        self, *, x: Tensor, pos: Tensor, flat_mask: Tensor, layout: Layout, lengths: TokenLengths | None
    ) -> dict[str, Tensor]:
        """:meth:`forward` on packed queries and context (same numbers as the padded layout)."""
        ctx_sel, ctx_pack = select_packed(
            keep=flat_mask == MaskValue.ONLINE_ENCODER,
            counts=lengths and lengths.encoded_counts,
            stand_in=True,
        )
        qry_sel, qry_pack = select_packed(
            keep=flat_mask == MaskValue.DECODER,
            counts=lengths and lengths.decoded_counts,
        )
        context = self.encoder_to_decoder(
            self.input_norm(gather_packed(x=x, selection=ctx_sel, packing=ctx_pack))
        )
        context = context + gather_packed(x=pos, selection=ctx_sel, packing=ctx_pack)
        queries = self.mask_token + gather_packed(x=pos, selection=qry_sel, packing=qry_pack)
        for block in self.blocks:
            queries = block(x=queries, context=context, packing=qry_pack, context_packing=ctx_pack)
        pred = self.to_output(self.norm(queries))
        out = scatter_packed(x=pred, selection=qry_sel, packing=qry_pack, num_tokens=layout.num_tokens)
        return unflatten_tokens(x=out, layout=layout)
