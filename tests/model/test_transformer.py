"""Blocks, encoder and decoder against straightforward per-sample loop computations (recipe §4.2–§4.4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from olmoearth_model.batch import MaskValue
from olmoearth_model.nn import build_model
from olmoearth_model.nn.attention import Block, DropPath
from olmoearth_model.synthetic import synthetic_batch


def _flat(d: dict[str, torch.Tensor], b: int) -> torch.Tensor:
    """Sample ``b`` of per-modality tensors flattened in (h, w, t, bandset) order."""
    return torch.cat([v[b].reshape(-1, *v.shape[5:]) for v in d.values()])


def _attend(block: Block, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
    """Unbatched attention written out by hand: [n, D] queries, [m, D] keys/values."""
    a = block.attn
    H, hd = a.num_heads, a.head_dim
    q = a.q(x).view(-1, H, hd).transpose(0, 1)
    k = a.k(ctx).view(-1, H, hd).transpose(0, 1)
    v = a.v(ctx).view(-1, H, hd).transpose(0, 1)
    w = torch.softmax(q @ k.transpose(1, 2) / hd**0.5, dim=-1)
    return a.proj((w @ v).transpose(0, 1).reshape(x.shape[0], -1))


def test_cross_block_does_not_normalise_context() -> None:
    torch.manual_seed(0)
    block = Block(dim=32, num_heads=4, cross_attn=True).eval()
    for p in block.parameters():  # non-trivial LayerNorm affine parameters
        torch.nn.init.normal_(p, std=0.3)
    x, y = torch.randn(1, 5, 32), torch.randn(1, 7, 32) * 3 + 1
    want = x[0] + _attend(block, block.norm1(x[0]), y[0])
    want = want + block.mlp.fc2(F.gelu(block.mlp.fc1(block.norm2(want)), approximate="none"))
    got = block(x=x, context=y, key_mask=torch.ones(1, 7, dtype=torch.bool))
    torch.testing.assert_close(got[0], want, atol=1e-5, rtol=1e-5)


def test_drop_path_is_per_sample() -> None:
    torch.manual_seed(0)
    dp = DropPath(0.5).train()
    out = dp(torch.ones(64, 3, 4))
    per_sample = out.flatten(1)
    assert torch.all((per_sample == 0).all(1) | (per_sample == 2).all(1))
    assert 0 < int((per_sample == 0).all(1).sum()) < 64
    assert torch.equal(dp.eval()(torch.ones(2, 3)), torch.ones(2, 3))


def test_linear_init_xavier_zero_bias() -> None:
    model = build_model(size="nano")
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears
    for lin in linears:
        assert torch.all(lin.bias == 0)
        bound = (6 / (lin.in_features + lin.out_features)) ** 0.5
        assert lin.weight.abs().max() <= bound
    assert torch.all(model.decoder.mask_token == 0)


def _model_and_batch(v1, rng):
    torch.manual_seed(0)
    model = build_model(size="nano").eval()
    # non-zero bandset embeddings and mask token so that their placement is tested too
    with torch.no_grad():
        for p in [
            *model.encoder.encodings.bandset_embed.values(),
            *model.decoder.encodings.bandset_embed.values(),
        ]:
            p.normal_()
        model.decoder.mask_token.normal_()
    batch = synthetic_batch(
        specs=v1, batch_size=3, patch_size=2, h=2, timesteps=3, rng=rng, missing_modality_prob=0.3
    )
    return model, batch


def test_encoder_matches_per_sample_loop(v1, rng) -> None:
    model, batch = _model_and_batch(v1, rng)
    enc = model.encoder
    kw = {"data": batch.data, "timestamps": batch.timestamps, "patch_size": batch.patch_size}
    out = enc(masks=batch.masks_a, **kw)
    tokens = enc.add_encodings(
        tokens=enc.patch_embed(data=batch.data, patch_size=2), timestamps=batch.timestamps, patch_size=2
    )
    counts = []
    for b in range(batch.batch_size):
        keep = _flat(batch.masks_a, b) == MaskValue.ONLINE_ENCODER
        counts.append(int(keep.sum()))
        x = _flat(tokens, b)[keep][None]
        for block in enc.blocks:
            x = block(x=x)  # no padding at all
        x = enc.norm(x)[0]
        got = _flat(out.tokens, b)
        torch.testing.assert_close(got[keep], x, atol=1e-5, rtol=1e-4)
        assert torch.all(got[~keep] == 0)
        torch.testing.assert_close(out.pooled[b], enc.project(x.mean(0)), atol=1e-5, rtol=1e-4)
    assert len(set(counts)) > 1  # the batch really needed padding


def test_decoder_matches_per_sample_loop(v1, rng) -> None:
    model, batch = _model_and_batch(v1, rng)
    dec = model.decoder
    latent = {m: torch.randn(*v.shape, 128) for m, v in batch.masks_a.items()}
    pred = dec(latent=latent, masks=batch.masks_a, timestamps=batch.timestamps, patch_size=2)
    enc = {
        m: dec.encodings(modality=m, grid=tuple(v.shape[:5]), timestamps=batch.timestamps, patch_size=2)
        for m, v in latent.items()
    }
    for b in range(batch.batch_size):
        mask = _flat(batch.masks_a, b)
        ctx_keep, qry_keep = mask == MaskValue.ONLINE_ENCODER, mask == MaskValue.DECODER
        ctx = dec.encoder_to_decoder(dec.input_norm(_flat(latent, b)[ctx_keep])) + _flat(enc, b)[ctx_keep]
        q = dec.mask_token + _flat(enc, b)[qry_keep]
        for block in dec.blocks:
            q = block(x=q[None], context=ctx[None])[0]
        want = dec.to_output(dec.norm(q))
        got = _flat(pred, b)
        torch.testing.assert_close(got[qry_keep], want, atol=1e-5, rtol=1e-4)
        assert torch.all(got[~qry_keep] == 0)


def test_decoder_reads_only_encoded_latents(v1, rng) -> None:
    model, batch = _model_and_batch(v1, rng)
    latent = {m: torch.randn(*v.shape, 128) for m, v in batch.masks_a.items()}
    noisy = {
        m: torch.where((batch.masks_a[m] == 0)[..., None], x, torch.randn_like(x)) for m, x in latent.items()
    }
    kw = {"masks": batch.masks_a, "timestamps": batch.timestamps, "patch_size": 2}
    a, b = model.decoder(latent=latent, **kw), model.decoder(latent=noisy, **kw)
    for m in a:
        torch.testing.assert_close(a[m], b[m])


def test_sample_independent_of_batch_mates(v1, rng) -> None:
    model, batch = _model_and_batch(v1, rng)
    full = model(data=batch.data, masks=batch.masks_a, timestamps=batch.timestamps, patch_size=2)
    one = model(
        data={m: v[1:2] for m, v in batch.data.items()},
        masks={m: v[1:2] for m, v in batch.masks_a.items()},
        timestamps=batch.timestamps[1:2],
        patch_size=2,
    )
    for m in full.decoded:
        torch.testing.assert_close(full.decoded[m][1:2], one.decoded[m], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(full.pooled[1:2], one.pooled, atol=1e-5, rtol=1e-4)


def test_sample_without_encoded_tokens_stays_finite(v1, rng) -> None:
    model, batch = _model_and_batch(v1, rng)
    model.train()
    masks = {m: v.clone() for m, v in batch.masks_a.items()}
    for v in masks.values():
        v[0][v[0] == MaskValue.ONLINE_ENCODER] = MaskValue.TARGET_ENCODER_ONLY
    out = model(data=batch.data, masks=masks, timestamps=batch.timestamps, patch_size=2)
    loss = sum(v.square().sum() for v in out.decoded.values()) + out.pooled.square().sum()
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.trainable_parameters() if p.grad is not None)
    assert torch.isfinite(loss.detach())
