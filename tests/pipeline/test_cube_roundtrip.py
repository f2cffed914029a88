"""The corpus cube: created up front, filled a shard at a time, read back by the loader's reader."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

from olmoearth_data.cube.layout import create_corpus, open_layout
from olmoearth_data.cube.writer import write_samples
from olmoearth_data.grid import Tile
from olmoearth_data.missing import MissingReason, SampleStatus
from olmoearth_data.modalities import modality_set
from olmoearth_data.results import ModalityResult, SampleResult
from olmoearth_data.samples import Sample
from olmoearth_data.stats import compute_norm_stats
from olmoearth_model.batch import MISSING_VALUE
from olmoearth_model.data.reader import CorpusReader, Crop

SPECS = modality_set("sentinel2_l2a,worldcover")


def _samples(n: int) -> list[Sample]:
    return [Sample(Tile(32610, 248 + i, -2176), dt.date(2020, 6, 1) + dt.timedelta(days=i)) for i in range(n)]


def _result(index: int, rng: np.random.Generator) -> SampleResult:
    s2, _wc = SPECS
    arrays = {
        bs.name: rng.integers(1, 5000, (12, len(bs.bands), bs.pixels_per_tile, bs.pixels_per_tile)).astype(
            np.uint16
        )
        for bs in s2.bandsets
    }
    present = np.ones(12, dtype=bool)
    present[3] = False
    for a in arrays.values():
        a[3] = 0  # an absent period is nodata, never zero-filled "data"
        a[0, :, :5, :7] = 0  # a partial swath
    reason = np.where(present, MissingReason.PRESENT, MissingReason.NO_ITEMS).astype(np.uint8)
    wc_arr = rng.choice([10, 20, 30, 40, 50], size=(1, 1, 256, 256)).astype(np.uint8)
    return SampleResult(
        index=index,
        status=SampleStatus.COMPLETE,
        status_reason="",
        modalities={
            "sentinel2_l2a": ModalityResult(arrays, present, reason),
            "worldcover": ModalityResult({"10m": wc_arr}, np.ones(1, bool), np.zeros(1, np.uint8)),
        },
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SampleResult]]:
    path = tmp_path_factory.mktemp("cube") / "c.zarr"
    layout = create_corpus(path, samples=_samples(6), specs=SPECS, samples_per_shard=4)
    rng = np.random.default_rng(0)
    results = [_result(i, rng) for i in range(6)]
    write_samples(path, layout=layout, specs=SPECS, results=results[:4])
    write_samples(path, layout=layout, specs=SPECS, results=results[4:])
    compute_norm_stats(path)  # consolidates the metadata, as a finished build does
    return path, results


def test_unaligned_writes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.zarr"
    layout = create_corpus(path, samples=_samples(6), specs=SPECS, samples_per_shard=4)
    rng = np.random.default_rng(1)
    with pytest.raises(ValueError, match="not shard-aligned"):
        write_samples(path, layout=layout, specs=SPECS, results=[_result(i, rng) for i in (1, 2)])
    with pytest.raises(ValueError, match="not shard-aligned"):
        write_samples(path, layout=layout, specs=SPECS, results=[_result(i, rng) for i in (0, 1)])
    with pytest.raises(FileExistsError):
        create_corpus(path, samples=_samples(6), specs=SPECS, samples_per_shard=4)


def test_every_sample_array_shards_align_with_the_layout(corpus: tuple[Path, list[SampleResult]]) -> None:
    path, _ = corpus
    layout, _meta = open_layout(path)
    group = zarr.open_group(str(path), mode="r")
    sharded = [
        name for name, arr in _walk(group) if arr.metadata.dimension_names[0] == "sample" and arr.shards
    ]
    assert {"status", "sentinel2_l2a/present", "sentinel2_l2a/10m/data", "worldcover/10m/data"} <= set(
        sharded
    )
    for name, arr in _walk(group):
        if arr.metadata.dimension_names and arr.metadata.dimension_names[0] == "sample" and arr.shards:
            assert arr.shards[0] == layout.samples_per_shard, name
    # inner chunks: the measured default (all periods, 32/16/16 px at 10/20/40 m; 64 px static maps)
    assert group["sentinel2_l2a/10m/data"].chunks == (1, 12, 4, 32, 32)
    assert group["sentinel2_l2a/20m/data"].chunks == (1, 12, 6, 16, 16)
    assert group["sentinel2_l2a/40m/data"].chunks == (1, 12, 2, 16, 16)
    assert group["worldcover/10m/data"].chunks == (1, 1, 64, 64)
    assert group["sentinel2_l2a/10m/data"].shards == (layout.samples_per_shard, 12, 4, 256, 256)


def _walk(group: zarr.Group, prefix: str = ""):
    for name, arr in group.arrays():
        yield prefix + name, arr
    for name, sub in group.groups():
        yield from _walk(sub, prefix + name + "/")


def test_datatree_view_and_values(corpus: tuple[Path, list[SampleResult]]) -> None:
    path, results = corpus
    tree = xr.open_datatree(path, engine="zarr")
    assert list(tree["sentinel2_l2a/20m"].dataset["band"].values) == [
        "B05",
        "B06",
        "B07",
        "B8A",
        "B11",
        "B12",
    ]
    assert str(tree.dataset["tile_id"].values[2]) == "EPSG:32610_250_-2176"
    np.testing.assert_array_equal(
        tree["sentinel2_l2a/40m"].dataset["data"].values[5],
        results[5].modalities["sentinel2_l2a"].arrays["40m"],
    )
    assert tree.dataset["period_start"].values[0, 0] == np.datetime64("2019-11-27")
    assert (tree.dataset["status"].values == SampleStatus.COMPLETE).all()


def test_reader_crops_equal_written_pixels_at_odd_offsets(corpus: tuple[Path, list[SampleResult]]) -> None:
    path, results = corpus
    reader = CorpusReader(path)
    s2 = SPECS[0]
    stats = zarr.open_group(str(path), mode="r")["sentinel2_l2a"].attrs["norm_stats"]
    crop = Crop(y0=3, x0=5, size=12, periods=(0, 1, 3, 12))
    got = reader.read(2, crop)["sentinel2_l2a"]  # [H, W, T, C]
    assert got.shape == (12, 12, 4, 12)
    arrays = results[2].modalities["sentinel2_l2a"].arrays
    for c, band in enumerate(s2.bands):
        bs_i = next(i for i, idx in enumerate(s2.bandset_band_indices()) if c in idx)
        bs = s2.bandsets[bs_i]
        k = int(bs.scale_to_base)
        j = s2.bandset_band_indices()[bs_i].index(c)
        ys = (np.arange(3, 15) // k)[:, None]
        xs = (np.arange(5, 17) // k)[None, :]
        stored = arrays[bs.name][1, j][ys, xs].astype(np.float32)
        mu, sd = stats[band]["mean"], stats[band]["std"]
        np.testing.assert_allclose(got[:, :, 1, c], (stored - (mu - 2 * sd)) / (4 * sd), rtol=1e-5)
    assert (got[:, :, 2] == MISSING_VALUE).all()  # absent period
    assert (got[:, :, 3] == MISSING_VALUE).all()  # padding beyond the 12 periods
    assert (got[:2, :2, 0] == MISSING_VALUE).all()  # the partial swath (rows < 5, cols < 7 at 10 m)


def test_norm_stats_match_numpy(corpus: tuple[Path, list[SampleResult]]) -> None:
    path, results = corpus
    stats = zarr.open_group(str(path), mode="r")["sentinel2_l2a"].attrs["norm_stats"]
    values = np.concatenate(
        [
            r.modalities["sentinel2_l2a"].arrays["10m"][[t for t in range(12) if t != 3], 0].ravel()
            for r in results
        ]
    )
    values = values[values != 0].astype(np.float64)
    assert stats["B02"]["count"] == values.size
    np.testing.assert_allclose(stats["B02"]["mean"], values.mean(), rtol=1e-5)
    np.testing.assert_allclose(stats["B02"]["std"], values.std(), rtol=1e-5)
