"""Batches of the session's fake corpus (``fake_corpus``, from ``olmoearth_data.testing_plugin``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from olmoearth_model.batch import Batch, MaskValue
from olmoearth_model.data.dataset import BatchDataset, LoaderConfig
from olmoearth_model.train.config import TrainConfig


def _decoded(batch: Batch) -> list[list[bool]]:
    """Per view and modality, one flag per sample: it has a DECODER token (a patch-loss term)."""
    return [
        [bool(x) for x in (m == MaskValue.DECODER).flatten(1).any(1)]
        for masks in (batch.masks_a, batch.masks_b)
        for m in masks.values()
    ]


@pytest.fixture(scope="session")
def accumulation_batches(fake_corpus: Path) -> dict[str, Batch]:
    """Two epoch-0 batches (2 samples, random masking) of the fake corpus for accumulation tests:

    - ``"every"``: each sample has decoded tokens of every modality in both views;
    - ``"uneven"``: some modality is decoded in one sample and not the other (the sample lacks it).

    The patch losses average over the samples that have decoded tokens of a modality, so only on an
    ``"every"`` batch is the mean over microbatches of one sample the full-batch loss.
    """
    cfg = LoaderConfig(corpus=str(fake_corpus), global_batch=2, patch_sizes=(4, 8), crop_tokens=(2, 4),
                       token_budget=400, masking="random")  # fmt: skip
    ds = BatchDataset(cfg, epoch=0)
    found: dict[str, Batch] = {}
    for b in range(ds.num_batches()):
        batch = ds.batch(b)
        flags = _decoded(batch)
        kind = (
            "every"
            if all(all(f) for f in flags)
            else "uneven"
            if any(any(f) != all(f) for f in flags)
            else None
        )
        if kind is not None:
            found.setdefault(kind, batch)
    assert found.keys() == {"every", "uneven"}, f"the fake corpus's epoch 0 lacks a batch kind: {list(found)}"
    return found


def small_config(corpus: Path, run: Path, *overrides: str) -> TrainConfig:
    """A Nano run on a fake corpus in a few CPU seconds: 2-sample batches, small crops, every sample
    (``data.split: null``), 12 steps, probe and checkpoint every 4; ``a.b=value`` ``overrides`` on top."""
    base = TrainConfig().updated(
        f"data.corpus={corpus}", f"run_dir={run}", "model.size=nano", "data.split=null",
        "data.global_batch=2", "data.microbatch=1", "data.token_budget=400", "data.patch_sizes=[4, 8]",
        "data.crop_tokens=[2, 4]", "schedule.max_steps=12", "schedule.warmup_steps=3",
        "metrics.probe_every=4", "checkpoint.every_steps=4", "optim.lr=1e-3", "optim.weight_decay=0.002",
    )  # fmt: skip
    return base.updated(*overrides)
