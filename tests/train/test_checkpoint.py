"""Checkpoint format: name-keyed full state dicts restore a model and optimiser exactly; checkpoints
from before FSDP2 support still resume; an unknown format is a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.optim import Optimizer

from olmoearth_model.losses import LossConfig
from olmoearth_model.nn.latent_mim import build_model
from olmoearth_model.synthetic import synthetic_batch
from olmoearth_model.train.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    TrainState,
    load_checkpoint,
    save_checkpoint,
)
from olmoearth_model.train.loop import ObjectiveModule


def _setup(seed: int) -> tuple[torch.nn.Module, ObjectiveModule, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    model = build_model(size="nano", modalities="s2")
    optimizer = torch.optim.AdamW(model.trainable_parameters(), lr=1e-3, weight_decay=0.02)
    return model, ObjectiveModule(model, loss_config=LossConfig()), optimizer


def _step(objective: ObjectiveModule, optimizer: torch.optim.Optimizer, seed: int) -> float:
    specs = objective.model.config.modalities
    rng = np.random.default_rng(seed)
    batch = synthetic_batch(specs=specs, batch_size=2, patch_size=4, h=3, timesteps=2, rng=rng)
    loss = objective(batch)["loss"]
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss)


def _assert_same(a: torch.nn.Module, b: torch.nn.Module, oa: Optimizer, ob: Optimizer) -> None:
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(y, x, rtol=0, atol=0, msg=name)
    sa, sb = oa.state_dict()["state"], ob.state_dict()["state"]
    assert sa.keys() == sb.keys() and len(sa) > 10
    for i in sa:
        for key in ("step", "exp_avg", "exp_avg_sq"):
            torch.testing.assert_close(sb[i][key], sa[i][key], rtol=0, atol=0)


def test_checkpoint_restores_model_optimiser_and_rng_exactly(tmp_path: Path) -> None:
    model, objective, optimizer = _setup(0)
    for seed in (1, 2):
        _step(objective, optimizer, seed)
    save_checkpoint(tmp_path, model=model, optimizer=optimizer, state=TrainState(2, 1, 0), config={"a": 1})
    ckpt = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)
    assert ckpt["format"] == CHECKPOINT_FORMAT
    assert set(ckpt["model"]) == set(model.state_dict())
    assert set(ckpt["optimizer"]["state"]) <= {n for n, p in model.named_parameters() if p.requires_grad}

    other, other_objective, other_optimizer = _setup(99)  # different initial weights
    torch.manual_seed(1234)  # and a different RNG state, which the checkpoint must restore
    state = load_checkpoint(tmp_path, model=other, optimizer=other_optimizer)
    assert state == TrainState(step=2, epoch=1, next_batch=0)
    _assert_same(model, other, optimizer, other_optimizer)
    assert torch.equal(torch.get_rng_state(), ckpt["torch_rng"])
    # One more step on each from the same RNG state (DropPath draws): identical loss and weights.
    resumed = _step(other_objective, other_optimizer, 3)
    torch.set_rng_state(ckpt["torch_rng"])
    assert resumed == _step(objective, optimizer, 3)
    _assert_same(model, other, optimizer, other_optimizer)


def test_checkpoint_from_before_fsdp2_support_still_resumes(tmp_path: Path) -> None:
    model, objective, optimizer = _setup(0)
    _step(objective, optimizer, 1)
    legacy = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 1, "epoch": 0,
              "next_batch": 1, "torch_rng": torch.get_rng_state(), "config": {}}  # fmt: skip
    torch.save(legacy, tmp_path / CHECKPOINT_NAME)
    other, _, other_optimizer = _setup(99)
    assert load_checkpoint(tmp_path, model=other, optimizer=other_optimizer) == TrainState(1, 0, 1)
    _assert_same(model, other, optimizer, other_optimizer)

    torch.save(legacy | {"format": "olmoearth.checkpoint/99"}, tmp_path / CHECKPOINT_NAME)
    with pytest.raises(ValueError, match=r"format 'olmoearth.checkpoint/99'.*resume=false"):
        load_checkpoint(tmp_path, model=other, optimizer=other_optimizer)
