"""Packed encoder/decoder (no padding rows) against the padded layout with key-padding masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from olmoearth_model.batch import MaskValue
from olmoearth_model.losses import LossConfig
from olmoearth_model.nn import attention as attention_module
from olmoearth_model.nn import build_model
from olmoearth_model.nn.tokens import pack_rows, select_packed, token_lengths
from olmoearth_model.objective import latent_mim_objective
from olmoearth_model.synthetic import synthetic_batch

TOL = {"atol": 2e-5, "rtol": 1e-4}


def _uneven_batch(v1):
    """Five samples with very different counts: no encoded token (but queries), nothing at all, the
    untouched masking, no query (but encoded tokens), and a single encoded token."""
    rng = np.random.default_rng(0)
    batch = synthetic_batch(specs=v1, batch_size=5, patch_size=4, h=3, timesteps=3, rng=rng,
                            missing_modality_prob=0.2, missing_timestep_prob=0.2)  # fmt: skip
    for masks in (batch.masks_a, batch.masks_b):
        first = True
        for m in masks.values():
            m[0][m[0] == MaskValue.ONLINE_ENCODER] = MaskValue.DECODER
            m[1][:] = MaskValue.MISSING
            m[3][m[3] == MaskValue.DECODER] = MaskValue.TARGET_ENCODER_ONLY
            enc = m[4] == MaskValue.ONLINE_ENCODER
            if first and enc.any():  # keep exactly one encoded token in sample 4
                keep = enc.flatten().nonzero()[0]
                enc.view(-1)[keep] = False
                first = False
            m[4][enc] = MaskValue.DECODER
    return batch


def _set_packed(model, packed: bool) -> None:
    model.encoder.packed = packed
    model.decoder.packed = packed


def _run(model, batch, *, packed: bool, seed: int, lengths: bool = True):
    """Outputs and gradients of a random linear functional of (tokens, pooled, predictions)."""
    _set_packed(model, packed)
    model.zero_grad(set_to_none=True)
    kw = {"data": batch.data, "timestamps": batch.timestamps, "patch_size": batch.patch_size}
    ln = token_lengths([batch.masks_a])[0] if lengths else None
    torch.manual_seed(seed)
    out = model(masks=batch.masks_a, lengths=ln, **kw)
    g = torch.Generator().manual_seed(1)
    loss = sum((v * torch.randn(v.shape, generator=g)).sum() for v in out.latent.values())
    loss = loss + sum((v * torch.randn(v.shape, generator=g)).sum() for v in out.decoded.values())
    loss = loss + (out.pooled * torch.randn(out.pooled.shape, generator=g)).sum()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out, grads


@pytest.mark.parametrize("attention", ["per_sample", "padded"])
@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("lengths", [True, False])
def test_packed_equals_padded(v1, mode: str, lengths: bool, attention: str, monkeypatch) -> None:
    """Both packed attentions (per-sample SDPA on CPU, padded SDPA elsewhere) against padded blocks."""
    if attention == "padded":
        monkeypatch.setattr(attention_module, "PER_SAMPLE_DEVICES", ())
    batch = _uneven_batch(v1)
    torch.manual_seed(0)
    model = build_model(size="nano", encoder_drop_path=0.3, decoder_drop_path=0.3)
    model.train(mode == "train")
    for p in model.decoder.parameters():  # non-zero mask token and non-trivial norms
        torch.nn.init.normal_(p, std=0.2)
    ln = token_lengths([batch.masks_a])[0]
    assert ln.encoded_counts[:2] == (0, 0) and ln.encoded_counts[4] == 1 and ln.decoded_counts[3] == 0
    assert sum(ln.encoded_counts) < 5 * ln.encoded and sum(ln.decoded_counts) < 5 * ln.decoded
    got, got_g = _run(model, batch, packed=True, seed=7, lengths=lengths)
    want, want_g = _run(model, batch, packed=False, seed=7, lengths=lengths)
    for m in want.latent:
        torch.testing.assert_close(got.latent[m], want.latent[m], **TOL)
        torch.testing.assert_close(got.decoded[m], want.decoded[m], **TOL)
    torch.testing.assert_close(got.pooled, want.pooled, **TOL)
    # sample 0 has no context but predictions: both layouts let it attend the same stand-in key
    assert any(v[0].abs().sum() > 0 for v in got.decoded.values())
    assert got_g.keys() == want_g.keys() and got_g
    for n in want_g:
        torch.testing.assert_close(got_g[n], want_g[n], atol=1e-4, rtol=1e-3, msg=n)
    assert model.state_dict().keys() == build_model(size="nano").state_dict().keys()


def test_packed_objective_loss_equals_padded(v1) -> None:
    batch = _uneven_batch(v1)
    torch.manual_seed(0)
    model = build_model(size="nano").train()
    losses = []
    for packed in (True, False):
        _set_packed(model, packed)
        torch.manual_seed(3)
        losses.append(latent_mim_objective(model=model, batch=batch, config=LossConfig()).loss)
    torch.testing.assert_close(losses[0], losses[1], atol=1e-6, rtol=1e-5)


def test_packing_rows_and_stand_ins() -> None:
    keep = torch.tensor([[0, 0, 0, 0], [1, 0, 1, 1], [0, 1, 0, 0]], dtype=torch.bool)
    sel, packing = select_packed(keep=keep, stand_in=True)
    assert sel.counts.tolist() == [0, 3, 1]  # sample 0 keeps one stand-in row nonetheless
    assert packing.sample.tolist() == [0, 1, 1, 1, 2]
    assert packing.length == 3 and packing.flat.tolist() == [0, 3, 4, 5, 6]
    assert packing.mask.sum(1).tolist() == [1, 3, 1]
    x = torch.randn(3, 3, 2)
    back = packing.unpack(packing.pack(x))
    torch.testing.assert_close(back[packing.mask], x[packing.mask])
    assert torch.all(back[~packing.mask] == 0)
    empty = pack_rows(mask=torch.zeros(2, 1, dtype=torch.bool), counts=[0, 0])
    assert empty.total == 0 and empty.unpack(torch.zeros(0, 4)).shape == (2, 1, 4)
    _, plain = select_packed(keep=keep)
    assert plain.sample.tolist() == [1, 1, 1, 2]
