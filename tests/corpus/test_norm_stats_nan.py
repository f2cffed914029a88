"""A float band that is NaN where its sibling bands are valid must not turn its statistics into NaN.

Sentinel-1 RTC stores dB with NaN as nodata; a pixel is kept while any band is valid, so one band can
be NaN inside a kept pixel (VH missing, VV present). The stats skip each band's own NaNs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import zarr

from olmoearth_data.missing import SampleStatus
from olmoearth_data.stats import compute_norm_stats

DATA = "sentinel1/10m/data"


def test_one_nan_band_in_a_valid_pixel_leaves_the_stats_finite(fake_corpus: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.zarr"
    shutil.copytree(fake_corpus, corpus)
    shutil.copytree(fake_corpus.with_suffix(".index"), corpus.with_suffix(".index"), dirs_exist_ok=True)
    shutil.copy(fake_corpus.with_name("fake.index.parquet"), corpus.with_name("corpus.index.parquet"))
    root = zarr.open_group(str(corpus), mode="r+")
    present = np.asarray(root["sentinel1/present"][:])
    status = np.asarray(root["status"][:])
    complete = status == SampleStatus.COMPLETE
    sample, period = next((s, t) for s, t in zip(*np.nonzero(present), strict=True) if complete[s])
    data = root[DATA]
    frame = np.asarray(data[sample, period])  # [band, y, x]
    both_valid = np.isfinite(frame).all(axis=0)
    blank = both_valid & (np.arange(frame.shape[-1]) % 2 == 0)  # every other column of valid pixels
    assert blank.sum() > 100, "the fake frame should have valid pixels to blank"
    frame[1][blank] = np.nan  # VH missing, VV valid: the pixel stays in, VH's value must not count
    data[sample, period] = frame

    stats = compute_norm_stats(corpus)["sentinel1"]

    values = np.asarray(data[:])
    keep = present & complete[:, None]
    vh = values[:, :, 1][keep]
    assert np.isfinite(stats["vh"]["mean"]) and np.isfinite(stats["vh"]["std"])
    assert np.isclose(stats["vh"]["mean"], np.nanmean(vh, dtype=np.float64), rtol=1e-9)
    assert np.isclose(stats["vh"]["std"], np.nanstd(vh, dtype=np.float64), rtol=1e-6)
    assert stats["vh"]["count"] == int(np.count_nonzero(~np.isnan(vh)))
    assert stats["vv"]["count"] > stats["vh"]["count"]
