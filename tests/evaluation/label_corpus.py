"""A corpus whose WorldCover labels are a known function of its S2 (real writer, index, norm stats)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from olmoearth_data.cube.layout import consolidate, create_corpus
from olmoearth_data.cube.writer import write_samples
from olmoearth_data.index import write_index, write_shard_fragment
from olmoearth_data.missing import MissingReason, SampleStatus
from olmoearth_data.modalities import modality_set
from olmoearth_data.results import ModalityResult, SampleResult
from olmoearth_data.stats import compute_norm_stats
from olmoearth_data.testing import fake_samples

#: WorldCover codes of the synthetic classes, and their S2 reflectance × 10000 per band (12 bands).
LABEL_CODES = (10, 30, 50, 80)
_SPECTRA = np.random.default_rng(5).uniform(500, 5000, (len(LABEL_CODES), 12))
#: Side of the class blocks in 10 m pixels: one token at patch size 8.
BLOCK = 8
PRESENT_PERIODS = 4


def _sample(index: int, seed: int) -> SampleResult:
    """S2 = the class's spectrum + noise at every pixel of its 80 m block; WorldCover = the class."""
    rng = np.random.default_rng([seed, index])
    s2 = modality_set("sentinel2_l2a")[0]
    cls = rng.integers(0, len(LABEL_CODES), (256 // BLOCK, 256 // BLOCK))
    arrays = {}
    for bs, idx in zip(s2.bandsets, s2.bandset_band_indices()):
        n = bs.pixels_per_tile
        per_block = n * BLOCK // 256
        grid = np.repeat(np.repeat(cls, per_block, 0), per_block, 1)  # [n, n] class per pixel
        a = np.zeros((12, len(idx), n, n), np.uint16)
        value = _SPECTRA[grid][..., idx].transpose(2, 0, 1)  # [C, n, n]
        for t in range(PRESENT_PERIODS):
            a[t] = np.clip(value + rng.normal(0, 100, value.shape), 1, 10000)
        arrays[bs.name] = a
    present = np.arange(12) < PRESENT_PERIODS
    reason = np.where(present, MissingReason.PRESENT, MissingReason.NO_ITEMS).astype(np.uint8)
    ids = [[f"synthetic-{index}-{t}"] if p else [] for t, p in enumerate(present)]
    codes = np.asarray(LABEL_CODES, np.uint8)[np.repeat(np.repeat(cls, BLOCK, 0), BLOCK, 1)]
    results = {
        "sentinel2_l2a": ModalityResult(arrays, present, reason, item_ids=ids),
        "worldcover": ModalityResult(
            {"10m": codes[None, None]},
            np.array([True]),
            np.array([MissingReason.PRESENT], np.uint8),
            item_ids=[["synthetic-wc"]],
        ),
    }
    return SampleResult(index, SampleStatus.COMPLETE, "", results)


def write_label_corpus(path: Path, *, n_samples: int = 6, seed: int = 0) -> Path:
    """A corpus (real writer, index and norm stats) of :func:`_sample` rows on tiles in distinct cells."""
    specs = modality_set("sentinel2_l2a,worldcover")
    samples = fake_samples(n_samples=n_samples, seed=seed)
    layout = create_corpus(path, samples=samples, specs=specs, samples_per_shard=2)
    for shard in range(layout.n_shards):
        start, stop = layout.shard_range(shard)
        results = [_sample(i, seed) for i in range(start, stop)]
        write_shard_fragment(corpus=path, shard=shard, results=results)
        write_samples(path, layout=layout, specs=specs, results=results)
    consolidate(path)
    write_index(corpus=path)
    compute_norm_stats(path)
    return path
