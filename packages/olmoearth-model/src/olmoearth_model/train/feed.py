"""The batches of a run, epoch after epoch from a resumed position, each with its wait time.

Two things keep a resumed run bit-identical and a pre-empted one alive:

- A ``DataLoader`` iterator draws its workers' base seed from the global torch RNG, which also drives
  DropPath. Batches do not use it (they are a pure function of seed, epoch and index), so the RNG
  state is put back after the iterator starts: a run resumed mid-epoch (a new iterator) then draws
  the same DropPath masks as an uninterrupted one.
- Loader workers start with SIGTERM blocked (the signal mask is inherited through fork and exec), so
  the SIGTERM that ``torchrun`` or a scheduler sends to the whole process group leaves them running
  until the rank has checkpointed and shuts them down.

An epoch's batches depend on its number, so each epoch gets its own loader; its workers are spawned
(a fresh interpreter importing torch, then opening the corpus: 8–10 s for 8 workers on the H200 run).
The next epoch's loader is therefore started ``lookahead`` batches before the current epoch ends, so
its workers start up and prefetch while the last batches are consumed (two sets of workers for that
short while).
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from olmoearth_model.batch import Batch
from olmoearth_model.data.dataset import BatchDataset, LoaderConfig, make_loader
from olmoearth_model.train.checkpoint import TrainState
from olmoearth_model.train.distributed import DistEnv


@dataclass
class FedBatch:
    """One batch (this rank's share, on the host), the epoch it belongs to and the seconds waited for it."""

    batch: Batch
    epoch: int
    data_wait: float


@contextlib.contextmanager
def _sigterm_blocked() -> Iterator[None]:
    """SIGTERM held back in this thread (and inherited by processes started meanwhile); delivered after."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _start(loader: torch.utils.data.DataLoader) -> Iterator[Batch]:
    rng = torch.get_rng_state()
    with _sigterm_blocked():
        it = iter(loader)
    torch.set_rng_state(rng)
    return it


def lookahead_batches(num_workers: int) -> int:
    """Batches before an epoch's end at which the next epoch's loader starts: 8 per worker (spawning 8
    workers took 8–10 s on the H200 run, ~0.2 s a step: 64 steps cover it), 0 in-process."""
    return 8 * num_workers


def feed(
    config: LoaderConfig, *, state: TrainState, num_batches: int, env: DistEnv, num_workers: int
) -> Iterator[FedBatch]:
    """Batches from ``state.epoch``/``state.next_batch`` on, forever; the caller advances ``state``."""

    def start(epoch: int, first: int) -> Iterator[Batch]:
        dataset = BatchDataset(
            config, epoch=epoch, start_batch=first, rank=env.rank, world_size=env.world_size
        )
        return _start(make_loader(dataset, num_workers=num_workers))

    lookahead = lookahead_batches(num_workers)
    epoch, first = state.epoch, state.next_batch
    it = start(epoch, first)
    while True:
        upcoming = None
        for index in range(first, num_batches):
            if upcoming is None and lookahead and num_batches - index <= lookahead:
                upcoming = start(epoch + 1, 0)
            wait = time.perf_counter()
            batch = next(it)
            yield FedBatch(batch=batch, epoch=epoch, data_wait=time.perf_counter() - wait)
        del it  # shuts this epoch's workers down
        epoch, first = epoch + 1, 0
        it = upcoming if upcoming is not None else start(epoch, first)
