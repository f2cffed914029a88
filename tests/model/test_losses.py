"""Losses (recipe §7) against direct loop computations, plus invariances and precision."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from olmoearth_model.batch import MaskValue
from olmoearth_model.losses import info_nce, modality_patch_discrimination, patch_discrimination

TAU = 0.1


def _loop_pd(pred: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """One sample, ``[n, D]`` decoded tokens: 2τ·mean_i CE(row i, label i), written out."""
    p, z = F.normalize(pred.double(), dim=-1), F.normalize(tgt.double(), dim=-1)
    total = 0.0
    for i in range(p.shape[0]):
        s = [float(p[i] @ z[j]) / TAU for j in range(p.shape[0])]
        total += -s[i] + torch.logsumexp(torch.tensor(s, dtype=torch.float64), 0).item()
    return torch.tensor(2 * TAU * total / p.shape[0], dtype=torch.float64)


def _loop_modality(pred, tgt, masks) -> float:
    total = 0.0
    for m in pred:
        per = []
        for b in range(pred[m].shape[0]):
            keep = masks[m][b].reshape(-1) == MaskValue.DECODER
            if keep.any():
                D = pred[m].shape[-1]
                per.append(_loop_pd(pred[m][b].reshape(-1, D)[keep], tgt[m][b].reshape(-1, D)[keep]))
        if per:
            total += float(torch.stack(per).mean())
    return total


def _random_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shapes = {"a": (3, 2, 2, 3, 2), "b": (3, 2, 2, 1, 1), "c": (3, 1, 2, 1, 1)}
    pred = {m: torch.randn(*s, 8, generator=g) for m, s in shapes.items()}
    tgt = {m: torch.randn(*s, 8, generator=g) for m, s in shapes.items()}
    masks = {m: torch.randint(0, 4, s, generator=g, dtype=torch.int8) for m, s in shapes.items()}
    masks["b"][1] = MaskValue.TARGET_ENCODER_ONLY  # a sample without decoded tokens in "b"
    masks["c"][:] = MaskValue.ONLINE_ENCODER  # a modality nobody decodes: skipped
    return pred, tgt, masks


def test_modality_patch_discrimination_matches_loop() -> None:
    pred, tgt, masks = _random_inputs()
    got = modality_patch_discrimination(predictions=pred, targets=tgt, masks=masks, tau=TAU)
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(_loop_modality(pred, tgt, masks), rel=1e-5)


def test_plain_patch_discrimination_matches_loop() -> None:
    pred, tgt, masks = _random_inputs(1)
    per = []
    for b in range(3):
        keep = torch.cat([masks[m][b].reshape(-1) for m in pred]) == MaskValue.DECODER
        p = torch.cat([pred[m][b].reshape(-1, 8) for m in pred])[keep]
        z = torch.cat([tgt[m][b].reshape(-1, 8) for m in pred])[keep]
        if keep.any():
            per.append(_loop_pd(p, z))
    got = patch_discrimination(predictions=pred, targets=tgt, masks=masks, tau=TAU)
    assert float(got) == pytest.approx(float(torch.stack(per).mean()), rel=1e-5)


def test_info_nce_matches_loop() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 16, generator=g), torch.randn(5, 16, generator=g)
    u, v = F.normalize(a.double(), dim=-1), F.normalize(b.double(), dim=-1)
    want = 0.0
    for i in range(5):
        s = torch.tensor([float(u[i] @ v[j]) / 0.1 for j in range(5)])
        want += float(torch.logsumexp(s, 0) - s[i]) / 5
    assert float(info_nce(a=a, b=b)) == pytest.approx(0.1 * want, rel=1e-5)
    assert float(info_nce(a=a, b=b, weight=1.0)) == pytest.approx(want, rel=1e-5)


def test_invariant_to_permutation_and_padding() -> None:
    pred, tgt, masks = _random_inputs(2)
    base = modality_patch_discrimination(predictions=pred, targets=tgt, masks=masks)
    # permute the token slots of modality "a" (same permutation for predictions, targets and mask)
    B = 3
    perm = torch.randperm(2 * 2 * 3 * 2, generator=torch.Generator().manual_seed(5))
    shape = pred["a"].shape
    p2, t2, m2 = dict(pred), dict(tgt), dict(masks)
    p2["a"] = pred["a"].reshape(B, -1, 8)[:, perm].reshape(shape)
    t2["a"] = tgt["a"].reshape(B, -1, 8)[:, perm].reshape(shape)
    m2["a"] = masks["a"].reshape(B, -1)[:, perm].reshape(shape[:-1])
    torch.testing.assert_close(modality_patch_discrimination(predictions=p2, targets=t2, masks=m2), base)
    # pad with extra non-decoded slots holding garbage: a wider grid, extra timestep of junk
    pad = (B, 2, 2, 1, 2)
    p3 = {**pred, "a": torch.cat([pred["a"], 1e3 * torch.randn(*pad, 8)], dim=3)}
    t3 = {**tgt, "a": torch.cat([tgt["a"], torch.randn(*pad, 8)], dim=3)}
    junk = torch.full(pad, MaskValue.TARGET_ENCODER_ONLY, dtype=torch.int8)
    junk[0, 0, 0, 0, 0] = MaskValue.MISSING
    m3 = {**masks, "a": torch.cat([masks["a"], junk], dim=3)}
    torch.testing.assert_close(modality_patch_discrimination(predictions=p3, targets=t3, masks=m3), base)


def test_gradients_finite_and_fp32_under_autocast() -> None:
    pred, tgt, masks = _random_inputs(3)
    pred = {m: v.requires_grad_() for m, v in pred.items()}
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        bf = {m: v.to(torch.bfloat16) for m, v in pred.items()}
        loss = modality_patch_discrimination(predictions=bf, targets=tgt, masks=masks)
        con = info_nce(a=torch.randn(4, 8).bfloat16(), b=torch.randn(4, 8).bfloat16())
    assert loss.dtype == torch.float32 and con.dtype == torch.float32
    loss.backward()
    for m, v in pred.items():
        assert torch.isfinite(v.grad).all()
        decoded = (masks[m] == MaskValue.DECODER)[..., None]
        assert torch.all(v.grad[~decoded.expand_as(v.grad)] == 0)  # only decoded tokens matter


def test_no_decoded_tokens_gives_zero() -> None:
    pred, tgt, masks = _random_inputs(4)
    masks = {m: torch.zeros_like(v) for m, v in masks.items()}
    assert float(modality_patch_discrimination(predictions=pred, targets=tgt, masks=masks)) == 0.0
