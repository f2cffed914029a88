"""The batches of a run, epoch after epoch from a resumed position, each with its wait time.

Two things keep a resumed run bit-identical and a pre-empted one alive:

- A ``DataLoader`` iterator draws its workers' base seed from the global torch RNG, which also drives
  DropPath. Batches do not use it (they are a pure function of seed, epoch and index), so the RNG
  state is put back after the iterator starts: a run resumed mid-epoch (a new iterator) then draws
  the same DropPath masks as an uninterrupted one.
- Loader workers start with SIGTERM blocked (the signal mask is inherited through fork and exec), so
  the SIGTERM that ``torchrun`` or a scheduler sends to the whole process group leaves them running
  until the rank has checkpointed and shuts them down.
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


def feed(
    config: LoaderConfig, *, state: TrainState, num_batches: int, env: DistEnv, num_workers: int
) -> Iterator[FedBatch]:
    """Batches from ``state.epoch``/``state.next_batch`` on, forever; the caller advances ``state``."""
    epoch, start = state.epoch, state.next_batch
    while True:
        dataset = BatchDataset(
            config, epoch=epoch, start_batch=start, rank=env.rank, world_size=env.world_size
        )
        it = _start(make_loader(dataset, num_workers=num_workers))
        for _ in range(start, num_batches):
            wait = time.perf_counter()
            batch = next(it)
            yield FedBatch(batch=batch, epoch=epoch, data_wait=time.perf_counter() - wait)
        epoch, start = epoch + 1, 0
