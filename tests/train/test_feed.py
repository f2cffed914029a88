"""The feed across epoch boundaries: the next epoch's loader starts early (train/feed.py), and the
batches, their order and the global RNG (DropPath) are exactly those of a feed without loader workers."""

from __future__ import annotations

from pathlib import Path

import torch

from olmoearth_model.data.dataset import BatchDataset, LoaderConfig
from olmoearth_model.train.checkpoint import TrainState
from olmoearth_model.train.distributed import DistEnv
from olmoearth_model.train.feed import feed, lookahead_batches


def _take(
    cfg: LoaderConfig, *, workers: int, state: TrainState, n: int
) -> list[tuple[int, list[int], float]]:
    num_batches = BatchDataset(cfg, epoch=0).num_batches()
    torch.manual_seed(7)
    fed = feed(cfg, state=state, num_batches=num_batches, env=DistEnv(), num_workers=workers)
    out = []
    for _ in range(n):
        item = next(fed)
        # a draw from the global RNG after every batch: starting loaders must not move it
        out.append(
            (
                item.epoch,
                item.batch.sample_index.tolist(),
                float(item.batch.data[next(iter(item.batch.data))].sum()),
                torch.rand(1).item(),
            )
        )
    fed.close()
    return out


def test_two_workers_starting_each_epoch_early_feed_what_the_in_process_loader_feeds(
    fake_corpus: Path,
) -> None:
    cfg = LoaderConfig(corpus=str(fake_corpus), global_batch=1, patch_sizes=(4, 8), crop_tokens=(2, 4),
                       token_budget=400)  # fmt: skip
    num_batches = BatchDataset(cfg, epoch=0).num_batches()
    assert lookahead_batches(2) >= 2 and num_batches >= 2
    n = 2 * num_batches + 2  # across two epoch boundaries
    state = TrainState(epoch=0, next_batch=num_batches - 1)  # resumed on an epoch's last batch
    reference = _take(cfg, workers=0, state=state, n=n)
    assert [e for e, *_ in reference] == [0] + [1] * num_batches + [2] * num_batches + [3]
    assert _take(cfg, workers=2, state=state, n=n) == reference
