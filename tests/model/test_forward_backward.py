"""Forward + backward of every size on CPU with a tiny crop, through the full v1 objective."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from olmoearth_model.batch import Batch
from olmoearth_model.losses import LossConfig
from olmoearth_model.nn import build_model
from olmoearth_model.objective import latent_mim_objective
from olmoearth_model.synthetic import synthetic_batch

# Large gets p = 1 (the smallest images): its 1.4 GB of weights already make it slow on CPU. With a single
# token per modality the discrimination loss is exactly 0, so every size needs h = T = 2 for gradients.
CROPS = {"nano": (4, 2, 2), "tiny": (4, 2, 2), "base": (4, 2, 2), "large": (1, 2, 2)}


@pytest.mark.parametrize(
    "size", [s if s == "nano" else pytest.param(s, marks=pytest.mark.slow) for s in CROPS]
)
def test_forward_backward(v1, size: str) -> None:
    p, h, T = CROPS[size]
    rng = np.random.default_rng(0)
    batch = synthetic_batch(specs=v1, batch_size=2, patch_size=p, h=h, timesteps=T, rng=rng)
    torch.manual_seed(0)
    model = build_model(size=size).train()
    out = latent_mim_objective(model=model, batch=batch)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    out.loss.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    for name in ("encoder.blocks.0.attn.q.weight", "encoder.project.weight", "decoder.to_output.weight"):
        assert grads[name] is not None and grads[name].abs().sum() > 0, name
    embed = model.encoder.patch_embed.embed["sentinel2_l2a"].proj[0].weight.grad
    assert embed is not None and embed.abs().sum() > 0


def test_contrastive_switch(v1) -> None:
    batch = synthetic_batch(
        specs=v1, batch_size=3, patch_size=2, h=2, timesteps=2, rng=np.random.default_rng(1)
    )
    torch.manual_seed(0)
    model = build_model(size="nano").eval()
    with torch.no_grad():
        on = latent_mim_objective(model=model, batch=batch)
        off = latent_mim_objective(model=model, batch=batch, config=LossConfig(contrastive=False))
        plain = latent_mim_objective(
            model=model, batch=batch, config=LossConfig(patch_loss="patch_discrimination")
        )
    assert float(off.contrastive) == 0.0 and float(on.contrastive) > 0
    torch.testing.assert_close(on.loss - on.contrastive, off.loss)
    assert torch.isfinite(plain.loss) and float(plain.loss) != float(on.loss)


def test_batch_to_and_views(v1) -> None:
    batch = synthetic_batch(
        specs=v1, batch_size=2, patch_size=1, h=2, timesteps=1, rng=np.random.default_rng(2)
    )
    moved = batch.to("cpu", non_blocking=True)
    assert isinstance(moved, Batch) and moved.patch_size == 1 and moved.modalities == batch.modalities
    assert moved.masks("b") is moved.masks_b and moved.batch_size == 2
    assert batch.data["sentinel2_l2a"].dtype == torch.float32 and batch.masks_a["cdl"].dtype == torch.int8
    assert batch.timestamps.shape == (2, 1, 3) and batch.timestamps.dtype == torch.int64
    with pytest.raises(ValueError):
        batch.masks("c")  # type: ignore[arg-type]


def test_batch_pin_memory_maps_every_tensor(v1, monkeypatch) -> None:
    """``DataLoader(pin_memory=True)`` calls ``Batch.pin_memory``; it must reach every tensor (CPU: faked)."""
    batch = synthetic_batch(
        specs=v1, batch_size=1, patch_size=1, h=1, timesteps=1, rng=np.random.default_rng(3)
    )
    seen: list[int] = []

    def fake_pin(self: torch.Tensor) -> torch.Tensor:
        seen.append(id(self))
        return self.clone()

    monkeypatch.setattr(torch.Tensor, "pin_memory", fake_pin)
    pinned = batch.pin_memory()
    assert len(seen) == 2 + 3 * len(v1)  # timestamps, sample_index, data + two mask views per modality
    assert pinned.patch_size == batch.patch_size
    assert torch.equal(pinned.masks_b["sentinel1"], batch.masks_b["sentinel1"])
