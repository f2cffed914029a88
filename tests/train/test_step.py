"""The lean step: a non-finite batch skips its update on-device, and a diverging run stops clearly."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from olmoearth_model.batch import Batch
from olmoearth_model.nn.tokens import token_lengths
from olmoearth_model.train.build import build_model_for_corpus
from olmoearth_model.train.config import OptimConfig, TrainConfig
from olmoearth_model.train.parallel import Parallel
from olmoearth_model.train.step import (
    NonFiniteGuard,
    ObjectiveModule,
    accumulate,
    build_optimizer,
    optimizer_step,
)
from tests.train.conftest import small_config


def _nan_batch(batch: Batch) -> Batch:
    """``batch`` with every pixel of its first modality NaN (a corrupt read that slipped through)."""
    first = next(iter(batch.data))
    data = {k: torch.full_like(v, float("nan")) if k == first else v for k, v in batch.data.items()}
    return dataclasses.replace(batch, data=data)


def _step_parts(
    corpus: Path,
) -> tuple[TrainConfig, torch.nn.Module, Parallel, torch.optim.Optimizer, NonFiniteGuard]:
    """The default model on ``corpus`` with its objective, optimiser and non-finite guard."""
    config = TrainConfig().updated(f"data.corpus={corpus}")
    model = build_model_for_corpus(config)
    objective = ObjectiveModule(model, loss_config=config.loss)
    par = Parallel(step_module=objective, objective=objective, mode="single")
    optimizer = build_optimizer(list(model.trainable_parameters()), config=OptimConfig(lr=1e-3))
    return config, model, par, optimizer, NonFiniteGuard(device=torch.device("cpu"))


def test_a_nan_batch_skips_the_update_and_is_counted(
    fake_corpus: Path, accumulation_batches: dict[str, Batch]
) -> None:
    config, model, par, optimizer, guard = _step_parts(fake_corpus)

    def step(batch: Batch) -> torch.Tensor:
        parts = accumulate(
            par, batch, microbatch=1, loss_config=config.loss, autocast=contextlib.nullcontext()
        )
        optimizer_step(par=par, model=model, optimizer=optimizer, guard=guard, parts=parts, max_grad_norm=1.0)
        return parts["loss"]

    good = accumulation_batches["every"]
    assert torch.isfinite(step(good))
    after_good = {n: p.detach().clone() for n, p in model.named_parameters()}
    moments = {
        n: optimizer.state[p]["exp_avg"].clone() for n, p in model.named_parameters() if p in optimizer.state
    }
    steps_before = [int(s["step"]) for s in optimizer.state.values()]

    for _ in range(2):
        assert not torch.isfinite(step(_nan_batch(good)))
    assert int(guard.in_a_row) == 2 and int(guard.skipped) == 2
    for name, p in model.named_parameters():  # weights, AdamW moments and step counts untouched
        torch.testing.assert_close(p.detach(), after_good[name], rtol=0, atol=0)
        if name in moments:
            torch.testing.assert_close(optimizer.state[p]["exp_avg"], moments[name], rtol=0, atol=0)
    assert [int(s["step"]) for s in optimizer.state.values()] == steps_before

    assert torch.isfinite(step(good))  # the next good batch trains again and ends the run of bad steps
    assert int(guard.in_a_row) == 0 and int(guard.worst) == 2
    assert any(not torch.equal(p.detach(), after_good[n]) for n, p in model.named_parameters())


def test_a_diverging_run_stops_after_k_skipped_steps_in_one_line(fake_corpus: Path, tmp_path: Path) -> None:
    """lr 1e30 blows the weights up after one step; every later loss is non-finite: three skipped steps
    in a row stop the run with one line naming the limit (exit 2), metrics up to there are kept."""
    config = small_config(fake_corpus, tmp_path / "run", "optim.lr=1e30", "schedule.warmup_steps=0")
    config.save(tmp_path / "c.yaml")
    cmd = [sys.executable, "-m", "olmoearth_model.cli", "train", "--config", str(tmp_path / "c.yaml")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-3000:]
    last = out.stderr.strip().splitlines()[-1]
    assert "error: stopping at step 3: 3 steps in a row had a non-finite loss or gradient norm" in last, last
    assert "optim.max_nonfinite_steps=3" in last
    assert "Traceback" not in out.stderr
    assert "skipped 1 non-finite" in out.stderr  # the console line of a skipped step


def test_one_host_read_per_step_and_the_same_numbers_as_reading_each_length(
    fake_corpus: Path, accumulation_batches: dict[str, Batch], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The step reads tensors back to the host once (all padded lengths in one ``tolist``), counted by
    wrapping torch's host-read methods; on a GPU each such read is a host–device sync. The losses
    equal those of the model reading each length itself (``lengths=None``)."""
    config, model, par, optimizer, guard = _step_parts(fake_corpus)
    batch = accumulation_batches["uneven"]
    reads: list[str] = []
    for name in ("item", "tolist", "__int__", "__float__", "__bool__"):
        original = getattr(torch.Tensor, name)

        def counted(self: torch.Tensor, *a: object, _o=original, _n=name, **k: object) -> object:
            reads.append(_n)
            return _o(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    torch.manual_seed(0)
    parts = accumulate(par, batch, microbatch=2, loss_config=config.loss, autocast=contextlib.nullcontext())
    optimizer_step(par=par, model=model, optimizer=optimizer, guard=guard, parts=parts, max_grad_norm=1.0)
    assert reads == ["tolist"]
    monkeypatch.undo()

    from olmoearth_model.losses import patch_loss

    kw = {"data": batch.data, "timestamps": batch.timestamps, "patch_size": batch.patch_size}
    model.eval()
    with torch.no_grad():
        targets = model.compute_targets(masks=batch.masks_a, **kw)
        lengths = token_lengths([batch.masks_a])[0]
        got = [model(masks=batch.masks_a, lengths=lengths, **kw), model(masks=batch.masks_a, **kw)]
        losses = [patch_loss(config=config.loss, predictions=o.decoded, targets=targets, masks=batch.masks_a,
                             lengths=ln) for o, ln in zip(got, (lengths, None))]  # fmt: skip
    torch.testing.assert_close(got[0].pooled, got[1].pooled, rtol=0, atol=0)
    torch.testing.assert_close(losses[0], losses[1], rtol=0, atol=0)
