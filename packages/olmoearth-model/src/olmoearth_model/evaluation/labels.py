"""Per-token labels from the corpus's own maps (decode-only in the recipe, so never encoder input).

Each probe task reads one map of a sample at its stored resolution (raw stored values, not
normalised) and reduces the pixels of each ``p × p``-pixel token (10 m pixels; 4p × 4p at 2.5 m):

============== ======================= =========== ==================================================
task           map                     kind        token label
============== ======================= =========== ==================================================
worldcover     worldcover              classes     most frequent class code (≥ half the pixels valid)
cdl            cdl                     classes     most frequent crop class id (CONUS only)
srtm           srtm                    regression  mean elevation, metres
canopy_height  wri_canopy_height_map   regression  mean canopy height, metres
osm_raster     openstreetmap_raster    multilabel  per category: present anywhere in the token
worldcereal    worldcereal             binary      temporary crops (first product) on ≥ half the pixels
============== ======================= =========== ==================================================

Invalid tokens are -1 (classes, binary) or NaN (regression); a sample without the map has no labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from olmoearth_data.modalities import ModalitySpec
from olmoearth_model.data.reader import CorpusReader, Crop
from olmoearth_model.data.sampling import TILE_PIXELS

Kind = Literal["classes", "regression", "multilabel", "binary"]


@dataclass(frozen=True)
class ProbeTask:
    """One probe task: which map, and how its pixels become a token label."""

    name: str
    modality: str
    kind: Kind
    units: str = ""


TASKS: dict[str, ProbeTask] = {
    t.name: t
    for t in (
        ProbeTask("worldcover", "worldcover", "classes"),
        ProbeTask("cdl", "cdl", "classes"),
        ProbeTask("srtm", "srtm", "regression", "m"),
        ProbeTask("canopy_height", "wri_canopy_height_map", "regression", "m"),
        ProbeTask("osm_raster", "openstreetmap_raster", "multilabel"),
        ProbeTask("worldcereal", "worldcereal", "binary"),
    )
}


def map_reader(*, corpus: str, tasks: tuple[str, ...]) -> tuple[CorpusReader | None, tuple[ProbeTask, ...]]:
    """A reader of the maps ``tasks`` need that ``corpus`` has, and those tasks (others are dropped)."""
    have = {s.name for s in CorpusReader(corpus).specs}
    usable = tuple(TASKS[t] for t in tasks if TASKS[t].modality in have)
    if not usable:
        return None, ()
    return CorpusReader(corpus, modalities=sorted({t.modality for t in usable})), usable


def token_labels(*, reader: CorpusReader, row: int, task: ProbeTask, patch_size: int) -> np.ndarray | None:
    """Labels of every token of row ``row``'s tile, ``None`` when the sample lacks the map.

    Returns ``[h, w]`` int64 (classes: stored codes; binary: 0/1; -1 invalid), float32 (regression,
    NaN invalid) or ``[h, w, C]`` int8 0/1 (multilabel), with ``h = w = 256 / patch_size``.
    """
    spec = next(s for s in reader.specs if s.name == task.modality)
    if not reader.present[spec.name][row].any():
        return None
    stored = reader.read_stored(row, Crop(y0=0, x0=0, size=TILE_PIXELS, periods=(0,)))
    bs = spec.bandsets[0]
    raw = stored[(spec.name, bs.name)][0]  # [C, n, n] stored dtype
    f = round(patch_size / bs.scale_to_base)  # stored pixels per token side
    h = TILE_PIXELS // patch_size
    blocks = raw.reshape(raw.shape[0], h, f, h, f).transpose(1, 3, 0, 2, 4).reshape(h, h, raw.shape[0], f * f)
    valid = _valid(blocks, spec)  # [h, w, C, f²]
    if task.kind == "multilabel":
        return (blocks.astype(bool) & valid).any(axis=-1).astype(np.int8)
    values, ok = blocks[:, :, 0], valid[:, :, 0]  # first band (WorldCereal: temporary crops)
    enough = ok.sum(axis=-1) * 2 >= f * f
    if task.kind == "regression":
        total = np.where(ok, values.astype(np.float64), 0.0).sum(axis=-1)
        return np.where(enough, total / np.maximum(ok.sum(axis=-1), 1), np.nan).astype(np.float32)
    if task.kind == "binary":
        positive = np.where(ok, values >= 50, False).sum(axis=-1) * 2 >= ok.sum(axis=-1)
        return np.where(enough, positive.astype(np.int64), -1)
    return np.where(enough, _mode(values.astype(np.int64), ok), -1)


def _valid(blocks: np.ndarray, spec: ModalitySpec) -> np.ndarray:
    if spec.nodata is None:
        return np.ones(blocks.shape, dtype=bool)
    if spec.nodata == "nan":
        return ~np.isnan(blocks)
    return blocks != spec.nodata


def _mode(values: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Most frequent valid value of each token's pixels (``values``/``ok`` ``[h, w, n]``; ties: smallest)."""
    h, w, n = values.shape
    codes = np.unique(values[ok]) if ok.any() else np.zeros(1, dtype=np.int64)
    idx = np.searchsorted(codes, values).clip(0, len(codes) - 1)
    token = np.repeat(np.arange(h * w), n).reshape(h, w, n)
    counts = np.zeros((h * w, len(codes)), dtype=np.int64)
    np.add.at(counts, (token[ok], idx[ok]), 1)
    return codes[counts.argmax(axis=1)].reshape(h, w)
