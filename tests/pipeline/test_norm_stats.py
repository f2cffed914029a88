"""``compute_norm_stats`` against plain numpy on a real corpus store, whatever the block size.

The corpus mixes every path of the reduction: uint16 (nodata 0), int16 (nodata −32768), float32
(NaN nodata, values far from zero so a naive ``E[x²] − E[x]²`` would lose digits), a period marked
absent that still holds data, a partial swath, and a dropped sample that holds data too.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import zarr

from olmoearth_data.cube.layout import create_corpus, nodata_fill
from olmoearth_data.cube.writer import write_samples
from olmoearth_data.grid import Tile
from olmoearth_data.missing import MissingReason, SampleStatus
from olmoearth_data.modalities import ModalitySpec, modality_set
from olmoearth_data.results import ModalityResult, SampleResult
from olmoearth_data.samples import Sample
from olmoearth_data.stats import compute_norm_stats

SPECS = modality_set("sentinel2_l2a,sentinel1,srtm")
N_SAMPLES = 6
DROPPED = 5


def _modality(spec: ModalitySpec, rng: np.random.Generator) -> ModalityResult:
    t = 12 if spec.is_multitemporal else 1
    arrays = {}
    for bs in spec.bandsets:
        shape = (t, len(bs.bands), bs.pixels_per_tile, bs.pixels_per_tile)
        if spec.dtype == "float32":  # dB-like noise around 1e4: σ ≈ 0.05, mean/σ ≈ 2·10⁵
            a = (1e4 + rng.normal(0, 0.05, shape)).astype(np.float32)
        elif spec.dtype == "int16":
            a = rng.integers(-400, 3000, shape).astype(np.int16)
        else:
            a = rng.integers(1, 60000, shape).astype(np.uint16)
        a[0, :, :5, :7] = nodata_fill(spec)  # a partial swath: every band nodata there
        arrays[bs.name] = a
    present = np.ones(t, dtype=bool)
    if spec.is_multitemporal:
        present[3] = False  # absent, yet its frame holds data: only the presence mask excludes it
    reason = np.where(present, MissingReason.PRESENT, MissingReason.NO_ITEMS).astype(np.uint8)
    return ModalityResult(arrays, present, reason)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("stats") / "c.zarr"
    samples = [
        Sample(Tile(32610, 248 + i, -2176), dt.date(2020, 6, 1) + dt.timedelta(days=i))
        for i in range(N_SAMPLES)
    ]
    layout = create_corpus(path, samples=samples, specs=SPECS, samples_per_shard=2)
    rng = np.random.default_rng(7)
    results = [
        SampleResult(
            index=i,
            status=SampleStatus.DROPPED if i == DROPPED else SampleStatus.COMPLETE,
            status_reason="",
            modalities={spec.name: _modality(spec, rng) for spec in SPECS},
        )
        for i in range(N_SAMPLES)
    ]
    for start in range(0, N_SAMPLES, 2):
        write_samples(path, layout=layout, specs=SPECS, results=results[start : start + 2])
    return path


def _numpy_stats(path: Path) -> dict[str, dict[str, tuple[int, float, float]]]:
    """``{modality: {band: (count, mean, std)}}`` with whole arrays in memory, float64 two-pass."""
    group = zarr.open_group(str(path), mode="r")
    complete = group["status"][:] == SampleStatus.COMPLETE
    out: dict[str, dict[str, tuple[int, float, float]]] = {}
    for spec in SPECS:
        keep = group[f"{spec.name}/present"][:].reshape(N_SAMPLES, -1) & complete[:, None]
        out[spec.name] = {}
        for bs in spec.bandsets:
            x = group[f"{spec.name}/{bs.name}/data"][:].reshape(N_SAMPLES, keep.shape[1], len(bs.bands), -1)
            fill = nodata_fill(spec)
            nodata = np.isnan(x) if isinstance(fill, float) else x == fill
            valid = ~nodata.all(axis=2) & keep[:, :, None]  # [samples, T, pixels]
            for j, band in enumerate(bs.bands):
                v = x[:, :, j][valid].astype(np.float64)
                out[spec.name][band] = (v.size, float(v.mean()), float(v.std()))
    return out


@pytest.mark.parametrize("block_bytes", [1, 2**30], ids=["one-shard-blocks", "one-block"])
def test_stats_equal_numpy_for_any_block_size(corpus: Path, block_bytes: int) -> None:
    want = _numpy_stats(corpus)
    got = compute_norm_stats(corpus, block_bytes=block_bytes)
    stored = zarr.open_group(str(corpus), mode="r")
    for spec in SPECS:
        assert dict(stored[spec.name].attrs["norm_stats"]) == got[spec.name]
        frames = 5 * (11 if spec.is_multitemporal else 1)  # complete samples × present periods
        for bs in spec.bandsets:
            for band in bs.bands:
                count, mean, std = want[spec.name][band]
                assert count == frames * bs.pixels_per_tile**2 - 5 * 35  # − each partial swath
                assert got[spec.name][band]["count"] == count, (spec.name, band)
                np.testing.assert_allclose(got[spec.name][band]["mean"], mean, rtol=1e-9, err_msg=band)
                np.testing.assert_allclose(got[spec.name][band]["std"], std, rtol=1e-9, err_msg=band)


def test_bad_block_size_is_refused(corpus: Path) -> None:
    with pytest.raises(ValueError, match="block_bytes must be ≥ 1"):
        compute_norm_stats(corpus, block_bytes=0)
