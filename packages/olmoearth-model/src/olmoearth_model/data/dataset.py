"""An IterableDataset that builds whole, masked batches inside loader workers."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from olmoearth_data.modalities import ModalitySpec
from olmoearth_data.splits import check_split, corpus_splits
from olmoearth_model.batch import Batch
from olmoearth_model.data.reader import CorpusReader
from olmoearth_model.data.sampling import batch_rng, epoch_order, plan_batch, plan_crop
from olmoearth_model.masking import build_masking, sample_token_missing


@dataclass(frozen=True)
class LoaderConfig:
    """How batches are drawn. ``global_batch`` is split evenly over ``world_size`` ranks."""

    corpus: str
    global_batch: int = 8
    seed: int = 3622
    masking: str = "modality_cross_random"
    num_workers: int = 0
    token_budget: int = 2250
    patch_sizes: tuple[int, int] = (1, 8)
    crop_tokens: tuple[int, int] = (1, 12)
    modalities: tuple[str, ...] | None = None
    split: str | None = None  # "train" / "validation" / "test" (olmoearth_data.splits); None = every sample


class BatchDataset(IterableDataset):
    """Yields this rank's share of every global batch of an epoch, from ``start_batch`` on."""

    def __init__(
        self, config: LoaderConfig, *, epoch: int, start_batch: int = 0, rank: int = 0, world_size: int = 1
    ):
        if config.global_batch % world_size:
            raise ValueError(f"global batch {config.global_batch} does not split over {world_size} ranks")
        self.config, self.epoch, self.start_batch = config, epoch, start_batch
        self.rank, self.world_size = rank, world_size
        check_split(config.split)
        self._reader: CorpusReader | None = None
        self._order: np.ndarray | None = None
        self._usable: np.ndarray | None = None

    @property
    def reader(self) -> CorpusReader:
        if self._reader is None:  # opened lazily, inside the worker process
            self._reader = CorpusReader(self.config.corpus, modalities=self.config.modalities)
        return self._reader

    @property
    def usable_indices(self) -> np.ndarray:
        """int64 corpus rows this dataset draws from: complete samples of ``config.split`` (or all)."""
        if self._usable is None:
            rows = self.reader.complete_indices
            if self.config.split is not None:
                rows = rows[corpus_splits(self.config.corpus)[rows] == self.config.split]
            self._usable = rows
        return self._usable

    def num_batches(self) -> int:
        return len(self.usable_indices) // self.config.global_batch

    def batch_rows(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """This rank's corpus rows of global batch ``batch`` and their positions in that batch."""
        if self._order is None:
            self._order = epoch_order(indices=self.usable_indices, seed=self.config.seed, epoch=self.epoch)
        g = self.config.global_batch
        rows = self._order[batch * g : (batch + 1) * g]
        positions = np.arange(self.rank, len(rows), self.world_size)
        return rows[positions], positions

    def batch(self, batch: int) -> Batch:
        """Global batch ``batch`` of this epoch (this rank's share), built in the calling process."""
        rows, positions = self.batch_rows(batch)
        return self.make_batch(batch=batch, rows=rows, positions=positions)

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info else (0, 1)
        # Counted from start_batch: the DataLoader asks workers 0, 1, … in turn, so worker 0 must hold
        # the first batch; by b % n_workers a run resumed at an odd batch got its batches pairwise swapped.
        for b in range(self.start_batch, self.num_batches()):
            if (b - self.start_batch) % n_workers == worker:
                yield self.batch(b)

    def make_batch(self, *, batch: int, rows: np.ndarray, positions: np.ndarray) -> Batch:
        """Read, crop, normalise and mask ``rows`` (at ``positions`` of global batch ``batch``).

        Each sample's draws come from its own stream keyed by its position in the *global* batch, so a
        sample is cropped and masked the same whatever the number of ranks or workers.
        """
        reader, cfg = self.reader, self.config
        rng = batch_rng(seed=cfg.seed, epoch=self.epoch, batch=batch)
        specs: tuple[ModalitySpec, ...] = reader.specs
        plan = plan_batch(rng=rng, specs=specs, patch_sizes=cfg.patch_sizes, crop_tokens=cfg.crop_tokens,
                          token_budget=cfg.token_budget)  # fmt: skip
        masking = build_masking(name=cfg.masking, specs=specs)
        data: dict[str, list[np.ndarray]] = {s.name: [] for s in specs}
        masks_a: dict[str, list[np.ndarray]] = {s.name: [] for s in specs}
        masks_b: dict[str, list[np.ndarray]] = {s.name: [] for s in specs}
        stamps = []
        for row, pos in zip(rows, positions):
            srng = np.random.default_rng([cfg.seed, self.epoch, batch, int(pos) + 1])
            present_any = np.zeros(12, dtype=bool)
            for s in specs:
                if s.is_multitemporal:
                    present_any |= reader.present[s.name][row]
            crop = plan_crop(rng=srng, plan=plan, present_any=present_any)
            pixels = reader.read(int(row), crop)
            missing = sample_token_missing(data=pixels, specs=specs, patch_size=plan.patch_size)
            view_a = masking(missing=missing, rng=srng)
            view_b = masking(missing=missing, rng=srng)
            for s in specs:
                data[s.name].append(pixels[s.name])
                masks_a[s.name].append(view_a[s.name])
                masks_b[s.name].append(view_b[s.name])
            stamps.append(reader.timestamps(int(row), crop.periods))
        return Batch(
            patch_size=plan.patch_size,
            data={k: torch.from_numpy(np.stack(v)) for k, v in data.items()},
            timestamps=torch.from_numpy(np.stack(stamps)),
            masks_a={k: torch.from_numpy(np.stack(v)) for k, v in masks_a.items()},
            masks_b={k: torch.from_numpy(np.stack(v)) for k, v in masks_b.items()},
            sample_index=torch.as_tensor(rows, dtype=torch.int64),
        )


def make_loader(dataset: BatchDataset, *, num_workers: int, pin_memory: bool | None = None) -> DataLoader:
    """A DataLoader over whole batches: spawn workers (zarr threads make fork unsafe), persistent, pinned."""
    pin = torch.cuda.is_available() if pin_memory is None else pin_memory
    kwargs = {}
    if num_workers > 0:
        kwargs = {"multiprocessing_context": "spawn", "persistent_workers": True, "prefetch_factor": 2}
    return DataLoader(dataset, batch_size=None, num_workers=num_workers, pin_memory=pin, **kwargs)
