"""Targets (recipe §6): Lite = frozen initial patch embeddings; EMA = full-encoder ablation."""

from __future__ import annotations

import torch

from olmoearth_model.batch import MaskValue
from olmoearth_model.nn import build_model
from olmoearth_model.objective import latent_mim_objective
from olmoearth_model.synthetic import synthetic_batch


def test_lite_target_is_initial_patch_embedding_and_gets_no_gradient(v1, rng) -> None:
    torch.manual_seed(0)
    model = build_model(size="nano")
    batch = synthetic_batch(specs=v1, batch_size=2, patch_size=4, h=2, timesteps=2, rng=rng)
    kw = {"data": batch.data, "masks": batch.masks_a, "timestamps": batch.timestamps, "patch_size": 4}
    online0 = {k: v.clone() for k, v in model.encoder.patch_embed.state_dict().items()}
    assert all(torch.equal(online0[k], v) for k, v in model.target.patch_embed.state_dict().items())
    assert all(not p.requires_grad for p in model.target.parameters())
    assert not any(p is q for p in model.target.parameters() for q in model.trainable_parameters())

    targets = model.compute_targets(**kw)
    assert not any(t.requires_grad for t in targets.values())
    # raw patch embeddings: no encodings, no norm
    raw = model.encoder.patch_embed(data=batch.data, patch_size=4)
    for m in raw:
        torch.testing.assert_close(targets[m], raw[m].detach())

    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    out = latent_mim_objective(model=model, batch=batch)
    out.loss.backward()
    assert all(p.grad is None for p in model.target.parameters())
    opt.step()
    model.update_target()
    changed = any(not torch.equal(online0[k], v) for k, v in model.encoder.patch_embed.state_dict().items())
    assert changed  # the online embeddings trained ...
    assert all(
        torch.equal(online0[k], v) for k, v in model.target.patch_embed.state_dict().items()
    )  # ... not these


def test_ema_target(v1, rng) -> None:
    torch.manual_seed(0)
    model = build_model(size="nano", target="ema", ema_decay=0.9)
    batch = synthetic_batch(specs=v1, batch_size=2, patch_size=2, h=2, timesteps=2, rng=rng)
    model.train()
    assert not model.target.training  # the teacher never uses DropPath
    # every non-missing token is visible to the target
    targets = model.compute_targets(
        data=batch.data, masks=batch.masks_a, timestamps=batch.timestamps, patch_size=2
    )
    for m, t in targets.items():
        present = batch.masks_a[m] != MaskValue.MISSING
        assert torch.all(t.norm(dim=-1)[present] > 0)
        assert torch.all(t[~present] == 0)

    before = [p.clone() for p in model.target.parameters()]
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    model.update_target()
    for b, t, o in zip(before, model.target.parameters(), model.encoder.parameters()):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * o)
    assert all(not p.requires_grad for p in model.target.parameters())
    assert torch.isfinite(latent_mim_objective(model=model, batch=batch).loss.detach())
