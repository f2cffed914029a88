"""Splits: deterministic, one per 40.96 km cell, stored in the sample index, read by the loader."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
import zarr

from olmoearth_data.grid import Tile
from olmoearth_data.index import index_path
from olmoearth_data.splits import (
    HELD_OUT_FRACTION,
    SPLITS,
    assign_cell_splits,
    assign_splits,
    coarse_cell_id,
    corpus_splits,
)
from olmoearth_model.data.dataset import BatchDataset, LoaderConfig


def _many_tiles(n: int, seed: int) -> list[str]:
    """``n`` tile ids scattered over two UTM zones, several tiles per 40.96 km cell."""
    rng = np.random.default_rng(seed)
    epsg = rng.choice([32610, 32736], n)
    return [
        Tile(int(e), int(c), int(r)).id
        for e, c, r in zip(epsg, rng.integers(0, 600, n), rng.integers(-900, -300, n))
    ]


def _cells_by_split(tile_ids: list[str], splits: list[str]) -> dict[str, set[str]]:
    out = defaultdict(set)
    for t, s in zip(tile_ids, splits):
        out[coarse_cell_id(t)].add(s)
    return out


def test_large_corpus_splits_are_deterministic_disjoint_and_proportioned():
    tiles = _many_tiles(6000, seed=1)
    splits = assign_splits(tiles)
    assert splits == assign_splits(list(reversed(tiles)))[::-1]  # order of the table does not matter
    per_cell = _cells_by_split(tiles, splits)
    assert all(len(s) == 1 for s in per_cell.values()), "a 40.96 km cell in two splits"
    shares = pd.Series([next(iter(s)) for s in per_cell.values()]).value_counts(normalize=True)
    assert len(per_cell) > 1000
    for held_out in ("validation", "test"):  # binomial sd ≈ 0.009 at this many cells
        assert abs(shares[held_out] - HELD_OUT_FRACTION) < 0.04
    # the same in a fresh interpreter with another hash seed (sha256, not Python's hash())
    code = (
        "import sys; from olmoearth_data import splits; print(','.join(splits.assign_splits(sys.argv[1:])))"
    )
    env = {"PYTHONHASHSEED": "123", "PATH": ""}
    run = subprocess.run([sys.executable, "-c", code, *tiles[:200]], capture_output=True, text=True,
                         check=True, env=env)  # fmt: skip
    assert run.stdout.strip().split(",") == splits[:200]


@pytest.mark.parametrize("n_cells", [1, 2, 3, 5, 12])
def test_small_corpora_get_held_out_cells_when_they_can(n_cells):
    cells = [f"EPSG:32610_{i}_-100" for i in range(n_cells)]
    got = assign_cell_splits(cells)
    counts = pd.Series(got).value_counts().to_dict()
    assert counts.get("train", 0) >= 1  # training always keeps a cell
    if n_cells >= 3:
        assert counts.get("validation", 0) >= 1 and counts.get("test", 0) >= 1
    elif n_cells == 2:
        assert counts == {"train": 1, "validation": 1}
    assert got == assign_cell_splits(list(reversed(cells)))


def test_demo_tiles_fall_back_to_one_cell_per_held_out_split():
    from olmoearth_twin.catalog.samples import DEMO_SAMPLES

    tiles = [s.tile.id for s in DEMO_SAMPLES]
    splits = assign_splits(tiles)
    assert set(splits) == set(SPLITS)
    assert all(len(s) == 1 for s in _cells_by_split(tiles, splits).values())


def test_index_stores_the_split_and_the_loader_reads_one(fake_corpus):
    group = zarr.open_group(str(fake_corpus), mode="r")
    tile_ids = [str(t) for t in group["tile_id"][:]]
    index = pd.read_parquet(index_path(fake_corpus)).sort_values("sample")
    assert index["split"].tolist() == assign_splits(tile_ids)
    assert corpus_splits(fake_corpus).tolist() == index["split"].tolist()
    everything = BatchDataset(LoaderConfig(corpus=str(fake_corpus), global_batch=1), epoch=0)
    parts = {}
    for split in SPLITS:
        ds = BatchDataset(LoaderConfig(corpus=str(fake_corpus), global_batch=1, split=split), epoch=0)
        parts[split] = set(ds.usable_indices.tolist())
        assert all(index["split"].iloc[r] == split for r in parts[split])
        rows = {int(ds.batch(b).sample_index[0]) for b in range(ds.num_batches())}
        assert rows == parts[split]
    assert set().union(*parts.values()) == set(everything.usable_indices.tolist())
    assert sum(len(p) for p in parts.values()) == len(everything.usable_indices)
    # 7 cells: the rank rule gives validation and test a cell each; the test cell's sample is the
    # dropped one, so only train and validation have complete samples
    assert parts["train"] and parts["validation"]
    with pytest.raises(ValueError, match="unknown split"):
        BatchDataset(LoaderConfig(corpus=str(fake_corpus), split="val"), epoch=0)
