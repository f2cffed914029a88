"""Online encoder (recipe §4.3).

patch-embed every bandset → add the encoder's composite encodings → flatten in (h, w, t, bandset)
order and concatenate modalities → keep only ONLINE_ENCODER tokens (stable sort + gather) →
``depth`` pre-LN blocks with DropPath 0.1 → final LayerNorm on the kept tokens → scatter back (zeros
elsewhere) → per-modality ``[B, h, w, T, S, D]``. The contrastive head averages the sample's
ONLINE_ENCODER output tokens and applies ``Linear(D, D)``.

The kept tokens are packed (``packed=True``, the default): every sample's tokens back to back,
``[Σ_b max(1, e_b), D]``, so the blocks' token-wise work skips padding; attention stays per sample
(:mod:`~olmoearth_model.nn.attention`). ``packed=False`` runs the former padded batch ``[B, max e_b, D]``
with a key-padding mask — the same numbers up to float rounding, kept as the tests' reference. A sample
without any kept token contributes one stand-in row (its first padding position) in both layouts, so
its attention never sees an empty key set; its outputs are discarded.

Deviation: the reference passes the key-padding mask only in ``train()`` mode (in eval the padded
tokens are attended — an inference quirk); we always pass it, so a sample's output never depends on
how much padding its batch mates force on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from olmoearth_data.modalities import ModalitySpec
from olmoearth_model.batch import MaskValue
from olmoearth_model.nn.attention import Block, init_linear_xavier, safe_key_mask
from olmoearth_model.nn.encodings import CompositeEncodings
from olmoearth_model.nn.patch_embed import MultiModalPatchEmbed
from olmoearth_model.nn.tokens import (
    flatten_tokens,
    gather_packed,
    gather_tokens,
    scatter_packed,
    scatter_tokens,
    select_packed,
    select_tokens,
    unflatten_tokens,
)


@dataclass
class EncoderOutput:
    """What the encoder returns.

    Attributes:
        tokens: per modality ``[B, h, w, T_m, S_m, D]``; ONLINE_ENCODER positions hold the normalised
            output, every other position is 0.
        pooled: ``[B, D]`` contrastive embedding: Linear(mean of the sample's ONLINE_ENCODER outputs);
            a sample without any such token pools to the projection's bias.
    """

    tokens: dict[str, Tensor]
    pooled: Tensor


class Encoder(nn.Module):
    """Multi-modal ViT encoder over the tokens marked ONLINE_ENCODER."""

    def __init__(
        self,
        *,
        specs: Sequence[ModalitySpec],
        dim: int,
        depth: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.1,
        packed: bool = True,
    ) -> None:
        super().__init__()
        # what built it, so an untrained twin can be built (the evaluation's random-init baseline)
        self.init_kwargs = {"specs": tuple(specs), "dim": dim, "depth": depth, "num_heads": num_heads,
                            "mlp_ratio": mlp_ratio, "drop_path": drop_path, "packed": packed}  # fmt: skip
        self.dim = dim
        self.packed = packed  # plain attribute: no state, checkpoints are the same either way
        self.patch_embed = MultiModalPatchEmbed(specs=specs, dim=dim)
        self.encodings = CompositeEncodings(specs=specs, dim=dim)
        # same rate in every block: the reference uses no linear ramp
        self.blocks = nn.ModuleList(
            Block(dim=dim, num_heads=num_heads, mlp_ratio=mlp_ratio, drop_path=drop_path)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=1e-5)
        self.project = nn.Linear(dim, dim, bias=True)
        init_linear_xavier(self)

    def add_encodings(
        self, *, tokens: Mapping[str, Tensor], timestamps: Tensor, patch_size: int
    ) -> dict[str, Tensor]:
        """``tokens[m]`` ``[B, h, w, T, S, D]`` plus this encoder's composite encodings (built in fp32)."""
        return {
            m: x
            + self.encodings(
                modality=m, grid=tuple(x.shape[:5]), timestamps=timestamps, patch_size=patch_size
            )
            for m, x in tokens.items()
        }

    def forward(
        self,
        *,
        data: Mapping[str, Tensor],
        masks: Mapping[str, Tensor],
        timestamps: Tensor,
        patch_size: int,
        length: int | None = None,
        counts: Sequence[int] | None = None,
    ) -> EncoderOutput:
        """Encode one masked view.

        Args:
            data: per modality float ``[B, H, W, T_m, C_m]`` (``H = W = h·p``).
            masks: per modality int ``[B, h, w, T_m, S_m]`` token roles (:class:`MaskValue`).
            timestamps: int ``[B, T, 3]`` (day, month0, year).
            patch_size: ``p`` in 10 m pixels.
            length: most encoded tokens of a sample, if known (saves a host sync; see ``TokenLengths``).
            counts: encoded tokens of each sample on the host (``TokenLengths.encoded_counts``), if
                known: then the packed layout reads nothing back (``length`` is then unused);
                otherwise it reads them here, one host sync.

        Returns:
            :class:`EncoderOutput`.
        """
        tokens = self.patch_embed(data=data, patch_size=patch_size)
        tokens = self.add_encodings(tokens=tokens, timestamps=timestamps, patch_size=patch_size)
        x, layout = flatten_tokens(tokens=tokens)
        flat_mask, _ = flatten_tokens(tokens={m: masks[m] for m in layout.names})
        keep = flat_mask == MaskValue.ONLINE_ENCODER
        if self.packed:
            sel, packing = select_packed(keep=keep, counts=counts, stand_in=True)
            h = gather_packed(x=x, selection=sel, packing=packing)
            for block in self.blocks:
                h = block(x=h, packing=packing)
            h = self.norm(h)
            out = scatter_packed(x=h, selection=sel, packing=packing, num_tokens=layout.num_tokens)
            padded = packing.unpack(h)  # [B, n, D] for the per-sample mean only
        else:
            sel = select_tokens(keep=keep, length=length)
            h = gather_tokens(x=x, selection=sel)
            key_mask = safe_key_mask(sel.valid)
            for block in self.blocks:
                h = block(x=h, key_mask=key_mask)
            padded = h = self.norm(h)
            out = scatter_tokens(x=h, selection=sel, num_tokens=layout.num_tokens)
        valid = sel.valid[..., None].to(padded.dtype)
        mean = (padded * valid).sum(dim=1) / sel.counts.clamp(min=1)[:, None].to(padded.dtype)
        return EncoderOutput(tokens=unflatten_tokens(x=out, layout=layout), pooled=self.project(mean))
