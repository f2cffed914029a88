"""Sincos/month encodings against the recipe's test vectors (§3.4) and the quarter layout (§3.3)."""

from __future__ import annotations

import math

import torch

from olmoearth_model.nn.encodings import CompositeEncodings, get_1d_sincos, get_2d_sincos, get_month_table


def test_1d_sincos_vector() -> None:
    got = get_1d_sincos(pos=torch.arange(3), dim=4)
    want = torch.tensor(
        [[0, 0, 1, 1], [0.841471, 0.310984, 0.540302, 0.950415], [0.909297, 0.591127, -0.416147, 0.806578]]
    )
    assert got.dtype == torch.float32 and got.shape == (3, 4)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=0)


def test_2d_sincos_vector_x_first() -> None:
    got = get_2d_sincos(grid_hw=(2, 3), res=2.0, dim=8)
    assert got.shape == (6, 8)
    want = torch.tensor([0.909297, 0.591127, -0.416147, 0.806578, 0, 0, 1, 1])
    torch.testing.assert_close(got[1], want, atol=1e-6, rtol=0)  # row 0, col 1
    # row 1, col 0: the x half is the origin, the y half encodes 1·res
    torch.testing.assert_close(got[3, 4:], want[:4], atol=1e-6, rtol=0)
    torch.testing.assert_close(got[3, :4], torch.tensor([0.0, 0, 1, 1]), atol=1e-6, rtol=0)


def test_month_table() -> None:
    table = get_month_table(dim=6)
    assert table.shape == (12, 6) and table.dtype == torch.float32
    for m in range(12):
        a = 2 * math.pi * m / 12
        want = torch.tensor([math.sin(a)] * 3 + [math.cos(a)] * 3)
        torch.testing.assert_close(table[m], want, atol=1e-6, rtol=0)


def test_composite_quarters(v1) -> None:
    enc = CompositeEncodings(specs=v1, dim=64)
    n = 16
    with torch.no_grad():
        enc.bandset_embed["sentinel2_l2a"].copy_(torch.arange(3 * n, dtype=torch.float32).view(3, n))
    timestamps = torch.tensor([[[1, 4, 2020], [1, 5, 2020]], [[1, 11, 2021], [1, 0, 2022]]])
    s2 = enc(modality="sentinel2_l2a", grid=(2, 2, 3, 2, 3), timestamps=timestamps, patch_size=4)
    assert s2.shape == (2, 2, 3, 2, 3, 64)
    torch.testing.assert_close(s2[1, 1, 2, 1, 2, :n], torch.arange(2 * n, 3 * n, dtype=torch.float32))
    torch.testing.assert_close(s2[0, 0, 0, 1, 0, n : 2 * n], get_1d_sincos(pos=torch.tensor([1]), dim=n)[0])
    torch.testing.assert_close(s2[1, 0, 0, 0, 0, 2 * n : 3 * n], get_month_table(dim=n)[11])
    space = get_2d_sincos(grid_hw=(2, 3), res=4.0, dim=n)
    torch.testing.assert_close(s2[0, 1, 2, 0, 1, 3 * n :], space[1 * 3 + 2])
    wc = enc(modality="worldcover", grid=(2, 2, 3, 1, 1), timestamps=timestamps, patch_size=4)
    assert torch.all(wc[..., :n] == 0)  # zero-init bandset embedding
    assert torch.all(wc[..., n : 3 * n] == 0)  # static: no time or month quarters
    torch.testing.assert_close(wc[0, 1, 2, 0, 0, 3 * n :], space[5])


def test_month_table_is_frozen_parameter(v1) -> None:
    enc = CompositeEncodings(specs=v1, dim=128)
    frozen = [n for n, p in enc.named_parameters() if not p.requires_grad]
    assert frozen == ["month_table.weight"]
    assert sum(p.numel() for p in enc.parameters()) == 12 * 32 + 12 * 32  # 12 bandsets + 12 months
