"""Write materialised samples into the corpus, one whole shard at a time.

Zarr rewrites a whole shard on any partial write (read–modify–write), so two writers touching one
shard lose data. Every write here therefore covers whole shards of every array with a ``sample``
dimension — data, ``present``, ``reason``, ``status`` — and a range that is not shard-aligned is
refused. ``status`` is written last: a sample is complete only once its data is on disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import zarr

from olmoearth_data.cube.layout import CorpusLayout, nodata_fill
from olmoearth_data.missing import MissingReason
from olmoearth_data.modalities import NUM_PERIODS, ModalitySpec
from olmoearth_data.results import SampleResult


def check_shard_aligned(*, layout: CorpusLayout, start: int, stop: int) -> None:
    """Raise unless ``[start, stop)`` is exactly a union of whole shards."""
    per = layout.samples_per_shard
    if (
        start % per != 0
        or not (stop % per == 0 or stop == layout.n_samples)
        or not start < stop <= layout.n_samples
    ):
        raise ValueError(
            f"sample range [{start}, {stop}) is not shard-aligned (shards of {per} samples, "
            f"{layout.n_samples} samples): concurrent writers would lose data in a shared shard"
        )


def write_samples(
    path: Path | str, *, layout: CorpusLayout, specs: Sequence[ModalitySpec], results: Sequence[SampleResult]
) -> None:
    """Write a shard-aligned, contiguous run of samples (``results`` ordered by ``index``)."""
    if not results:
        return
    start, stop = results[0].index, results[-1].index + 1
    if [r.index for r in results] != list(range(start, stop)):
        raise ValueError("results must be contiguous sample indices in order")
    check_shard_aligned(layout=layout, start=start, stop=stop)
    group = zarr.open_group(str(path), mode="r+")
    n = stop - start
    for spec in specs:
        t = NUM_PERIODS if spec.is_multitemporal else 1
        present = np.zeros((n, t), dtype=bool)
        reason = np.full((n, t), int(MissingReason.NOT_BUILT), dtype=np.uint8)
        for i, r in enumerate(results):
            m = r.modalities.get(spec.name)
            if m is not None:
                present[i], reason[i] = m.present, m.reason
        for bs in spec.bandsets:
            px = bs.pixels_per_tile
            block = np.full((n, t, len(bs.bands), px, px), nodata_fill(spec), dtype=spec.dtype)
            for i, r in enumerate(results):
                m = r.modalities.get(spec.name)
                if m is not None:
                    block[i] = m.arrays[bs.name]
            arr = group[f"{spec.name}/{bs.name}/data"]
            arr[start:stop] = block if spec.is_multitemporal else block[:, 0]
        group[f"{spec.name}/present"][start:stop] = present if spec.is_multitemporal else present[:, 0]
        group[f"{spec.name}/reason"][start:stop] = reason if spec.is_multitemporal else reason[:, 0]
    group["status_reason"][start:stop] = np.array([r.status_reason for r in results], dtype=object)
    group["status"][start:stop] = np.array([int(r.status) for r in results], dtype=np.int8)
