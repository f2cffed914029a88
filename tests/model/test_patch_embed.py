"""Patch embedding (recipe §3.1): a strided conv at p = 8, antialiased-bicubic input resize + conv below."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from olmoearth_model.batch import MISSING_VALUE
from olmoearth_model.nn.patch_embed import ModalityPatchEmbed


def _manual(embed: ModalityPatchEmbed, x: torch.Tensor, p: int) -> torch.Tensor:
    """Per bandset: [(B·T), C_bs, H, W] → (resize) → conv2d → [B, h, w, T, S, D]."""
    B, H, W, T, _ = x.shape
    outs = []
    for conv, idx in zip(embed.proj, embed.spec.bandset_band_indices()):
        img = x[..., idx].permute(0, 3, 4, 1, 2).reshape(B * T, len(idx), H, W)
        if p != 8:
            img = F.interpolate(img, size=(H // p * 8, W // p * 8), mode="bicubic", antialias=True)
        y = F.conv2d(img, conv.weight, conv.bias, stride=8)  # [B·T, D, h, w]
        outs.append(y.view(B, T, -1, H // p, W // p).permute(0, 3, 4, 1, 2))
    return torch.stack(outs, dim=4)


@pytest.mark.parametrize("p", [8, 5, 4, 1])
def test_matches_conv(v1, p: int) -> None:
    torch.manual_seed(0)
    s2 = v1[0]
    embed = ModalityPatchEmbed(spec=s2, dim=16)
    x = torch.randn(2, 3 * p, 2 * p, 2, s2.num_bands)
    got = embed(x=x, patch_size=p)
    assert got.shape == (2, 3, 2, 2, 3, 16)
    torch.testing.assert_close(got, _manual(embed, x, p), atol=1e-5, rtol=1e-5)


def test_p8_is_plain_strided_conv(v1) -> None:
    torch.manual_seed(0)
    s1 = v1[1]
    embed = ModalityPatchEmbed(spec=s1, dim=8)
    x = torch.randn(1, 16, 8, 1, 2)
    got = embed(x=x, patch_size=8)[0, :, :, 0, 0]  # [h, w, D]
    w, b = embed.proj[0].weight, embed.proj[0].bias
    # token (i, j) is the dot product of the kernel with pixels [8i:8i+8, 8j:8j+8]
    for i in range(2):
        patch = x[0, 8 * i : 8 * i + 8, 0:8, 0].permute(2, 0, 1)  # [C, 8, 8]
        torch.testing.assert_close(got[i, 0], (w * patch).sum(dim=(1, 2, 3)) + b, atol=1e-5, rtol=1e-5)


def test_missing_is_zero_before_embedding(v1) -> None:
    torch.manual_seed(0)
    embed = ModalityPatchEmbed(spec=v1[1], dim=8)
    x = torch.randn(1, 8, 8, 1, 2)
    x[0, :2, :2] = MISSING_VALUE
    zeroed = x.clone()
    zeroed[0, :2, :2] = 0
    torch.testing.assert_close(embed(x=x, patch_size=4), embed(x=zeroed, patch_size=4))


def test_default_conv_init_untouched(v1) -> None:
    """Model-level Xavier init touches only nn.Linear; the convs keep kaiming-uniform(a=√5) bounds."""
    from olmoearth_model.nn import build_model

    torch.manual_seed(0)
    model = build_model(size="nano")
    conv = model.encoder.patch_embed.embed["sentinel2_l2a"].proj[1]  # 6 bands → fan_in 384
    bound = 1 / (6 * 64) ** 0.5
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
    assert conv.bias.abs().max() <= bound and conv.bias.abs().max() > 0
