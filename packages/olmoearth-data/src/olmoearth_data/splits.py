"""Spatially disjoint train / validation / test splits, one per 40.96 km cell.

A sample's split is a function of its *coarse cell* — the 16 × 16-tile (40.96 km) cell of the UTM
grid that the OSM sampler already uses to share centre dates (:data:`~olmoearth_data.osm.time.COARSE_FACTOR`)
— so neighbouring tiles, which share dates and look alike, never end up on both sides of a split.

**Rule.** Each cell gets ``u = sha256("olmoearth-split/1:" + cell id)`` read as a number in [0, 1);
``u < 0.1`` → ``validation``, ``u < 0.2`` → ``test``, else ``train``. The hash (not Python's
``hash()``) makes it the same in every process, on every machine, for every corpus holding the cell,
and a cell keeps its split when a corpus grows.

**Small corpora.** With few cells the threshold rule easily leaves validation or test empty (a
corpus of 5 cells does so with probability ≈ 0.8). Then — only when the corpus has fewer than
:data:`RANK_RULE_BELOW` cells and a held-out split came out empty — cells are ranked by ``u`` and the
first ``max(1, round(0.1 n))`` go to validation, the next as many to test, the rest to train (with 2
cells: validation + train; with 1: train only). Still one split per cell, still deterministic, but it
depends on which cells the corpus holds, so it can change when such a corpus grows. The demo corpus
(8 samples, 5 cells) takes this path: 1 cell each for validation and test.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from olmoearth_data.grid import Tile
from olmoearth_data.osm.time import COARSE_FACTOR

SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: Share of cells held out for validation and for test (threshold rule).
HELD_OUT_FRACTION = 0.1
#: Corpora with fewer cells than this fall back to the rank rule when a held-out split is empty.
RANK_RULE_BELOW = 50
_SALT = "olmoearth-split/1:"


def coarse_cell_id(tile: Tile | str) -> str:
    """``EPSG:<code>_<col>_<row>`` of the 40.96 km cell holding ``tile`` (a :class:`Tile` or tile id)."""
    t = Tile.from_id(tile) if isinstance(tile, str) else tile
    epsg, col, row = t.coarse_cell(factor=COARSE_FACTOR)
    return f"EPSG:{epsg}_{col}_{row}"


def cell_hash(cell_id: str) -> float:
    """The cell's position in [0, 1): the first 8 bytes of sha256(salt + id) over 2⁶⁴."""
    digest = hashlib.sha256((_SALT + cell_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _threshold_split(u: float) -> str:
    if u < HELD_OUT_FRACTION:
        return "validation"
    if u < 2 * HELD_OUT_FRACTION:
        return "test"
    return "train"


def assign_cell_splits(cell_ids: Iterable[str]) -> dict[str, str]:
    """Split of every distinct cell id (module docstring: threshold rule, rank rule for small sets)."""
    cells = sorted(set(cell_ids))
    out = {c: _threshold_split(cell_hash(c)) for c in cells}
    held_out_empty = not {"validation", "test"} <= set(out.values())
    if held_out_empty and len(cells) < RANK_RULE_BELOW:
        ranked = sorted(cells, key=lambda c: (cell_hash(c), c))
        k = max(1, round(HELD_OUT_FRACTION * len(ranked)))
        out = {c: "train" for c in ranked}
        for c in ranked[: min(k, len(ranked) - 1)]:  # keep at least one training cell
            out[c] = "validation"
        for c in ranked[k : min(2 * k, len(ranked) - 1)]:
            out[c] = "test"
    return out


def assign_splits(tile_ids: Sequence[str]) -> list[str]:
    """Split (``train`` / ``validation`` / ``test``) of every sample, from its tile id, in order."""
    cells = [coarse_cell_id(t) for t in tile_ids]
    by_cell = assign_cell_splits(cells)
    return [by_cell[c] for c in cells]


def corpus_splits(corpus: Path | str) -> np.ndarray:
    """Split of every row of ``corpus`` (str ``[n_samples]``).

    Read from the sample index's ``split`` column when the index has one (a build writes it), else
    computed from the store's tile ids — the same function, so both agree.
    """
    import pandas as pd
    import pyarrow.parquet as pq
    import zarr

    from olmoearth_data.index import index_path

    index = index_path(corpus)
    if index.exists() and {"sample", "split"} <= set(pq.read_schema(index).names):
        df = pd.read_parquet(index, columns=["sample", "split"])
        return df.sort_values("sample")["split"].to_numpy(dtype=str)
    group = zarr.open_group(str(corpus), mode="r")
    return np.asarray(assign_splits([str(t) for t in group["tile_id"][:]]), dtype=str)


def check_split(split: str | None) -> None:
    """Refuse an unknown split name (``None`` means every sample)."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {list(SPLITS)}")
