"""The loader's direct shard reader against zarr-python, and the reader on a full-width corpus.

Every array here is a real Zarr v3 store written by zarr-python (or by the corpus writer); the direct
reader must return exactly what zarr returns for any box, and the loader must give the same batches
whether it decodes shards itself or goes through zarr.
"""

from __future__ import annotations

import datetime as dt
import pickle
from pathlib import Path

import numpy as np
import pytest
import zarr
from zarr.codecs import BloscCodec, BloscShuffle, ShardingCodec, ShardingCodecIndexLocation, ZstdCodec

from olmoearth_data.cube.layout import Chunking, create_corpus
from olmoearth_data.cube.writer import write_samples
from olmoearth_data.grid import Tile
from olmoearth_data.missing import MissingReason, SampleStatus
from olmoearth_data.modalities import modality_set
from olmoearth_data.results import ModalityResult, SampleResult
from olmoearth_data.samples import Sample
from olmoearth_data.stats import compute_norm_stats
from olmoearth_model.batch import MISSING_VALUE
from olmoearth_model.data.reader import CorpusReader, Crop
from olmoearth_model.data.shards import ShardedArray

BLOSC = BloscCodec(cname="zstd", clevel=3, shuffle=BloscShuffle.bitshuffle)


def _random_boxes(shape: tuple[int, ...], rng: np.random.Generator, n: int) -> list[list[tuple[int, int]]]:
    boxes = []
    for _ in range(n):
        box = []
        for size in shape:
            a = int(rng.integers(0, size))
            box.append((a, int(rng.integers(a + 1, size + 1))))
        boxes.append(box)
    return boxes


@pytest.mark.parametrize(
    ("dtype", "fill", "chunks", "shards", "compressed"),
    [
        ("uint16", 0, (1, 12, 4, 32, 32), (2, 12, 4, 64, 64), True),  # the corpus's monthly layout
        ("uint16", 0, (1, 1, 4, 16, 16), (2, 12, 4, 64, 64), True),  # one period per chunk
        ("float32", float("nan"), (1, 3, 2, 16, 16), (3, 12, 2, 64, 64), True),  # S1-like, NaN fill
        ("int16", -32768, (1, 1, 1, 8, 8), (2, 12, 1, 32, 32), False),  # no compressor
    ],
)
def test_direct_reads_equal_zarr_for_any_box(
    tmp_path: Path, dtype: str, fill: float, chunks: tuple, shards: tuple, compressed: bool
) -> None:
    shape = (5, 12, shards[2], shards[3], shards[4])  # 5 samples: the last shard is partial
    arr = zarr.create_array(
        str(tmp_path / "a.zarr"), shape=shape, dtype=dtype, chunks=chunks, shards=shards,
        compressors=(BLOSC,) if compressed else None, fill_value=fill,
    )  # fmt: skip
    rng = np.random.default_rng(0)
    data = rng.normal(1000, 300, shape).astype(dtype)
    data[:, 3] = fill  # an absent period: never-written chunks
    data[1, :, :, :10, :7] = fill  # a partial swath
    data[0, :, :, 32:64, 32:64] = fill  # a blank corner: every chunk there is never written
    arr[:4] = data[:4]  # samples 4.. stay unwritten: a shard file that does not exist
    direct = ShardedArray.from_zarr(zarr.open_array(str(tmp_path / "a.zarr"), mode="r"))
    assert direct is not None
    for box in _random_boxes(shape, rng, 60):
        expected = arr[tuple(slice(a, b) for a, b in box)]
        got = direct.read(box)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected, err_msg=str(box))
    assert direct.counters.empty_chunks > 0 and direct.counters.decoded_bytes > 0
    with pytest.raises(IndexError, match="outside the array"):
        direct.read([(0, 1), (0, 13), (0, 1), (0, 1), (0, 1)])
    direct.close()


def test_layouts_the_direct_reader_does_not_decode_fall_back_to_zarr(tmp_path: Path) -> None:
    plain = zarr.create_array(str(tmp_path / "plain.zarr"), shape=(4, 8), dtype="uint8", chunks=(2, 8))
    start = zarr.create_array(
        str(tmp_path / "start.zarr"), shape=(4, 8), dtype="uint8", chunks=(1, 8), shards=(2, 8),
        serializer=ShardingCodec(chunk_shape=(1, 8), index_location=ShardingCodecIndexLocation.start),
    )  # fmt: skip
    zstd = zarr.create_array(
        str(tmp_path / "zstd.zarr"), shape=(4, 8), dtype="uint8", chunks=(1, 8), shards=(2, 8),
        compressors=(ZstdCodec(),),
    )  # fmt: skip
    memory = zarr.create_array(
        zarr.storage.MemoryStore(), shape=(4, 8), dtype="uint8", chunks=(1, 8), shards=(2, 8)
    )
    for arr in (plain, start, zstd, memory):
        assert ShardedArray.from_zarr(arr) is None


def _samples(n: int) -> list[Sample]:
    return [
        Sample(Tile(32610, 300 + i, -2176), dt.date(2021, 3, 1) + dt.timedelta(days=9 * i)) for i in range(n)
    ]


def _results(specs: tuple, n: int, rng: np.random.Generator) -> list[SampleResult]:
    out = []
    for i in range(n):
        mods = {}
        for spec in specs:
            t = spec.num_timesteps
            arrays = {}
            for bs in spec.bandsets:
                size = (t, len(bs.bands), bs.pixels_per_tile, bs.pixels_per_tile)
                if spec.name == "openstreetmap_raster":
                    a = (rng.random(size) < 0.01).astype(np.uint8)
                    a[:, 5:] = 0  # most categories are empty in most tiles
                elif spec.dtype == "float32":
                    a = rng.normal(-12, 3, size).astype(np.float32)
                    a[:, :, :40, 200:] = np.nan  # a swath edge
                else:
                    a = rng.integers(1, 3000, size).astype(spec.dtype)
                arrays[bs.name] = a
            present = np.ones(t, bool)
            if t == 12:
                present[[2, 7]] = False
                for a in arrays.values():
                    a[[2, 7]] = np.nan if spec.dtype == "float32" else 0
            reason = np.where(present, MissingReason.PRESENT, MissingReason.NO_ITEMS).astype(np.uint8)
            mods[spec.name] = ModalityResult(arrays, present, reason)
        out.append(SampleResult(index=i, status=SampleStatus.COMPLETE, status_reason="", modalities=mods))
    return out


@pytest.fixture(scope="module")
def wide_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SampleResult]]:
    """S2, S1, WorldCover, SRTM and the 2.5 m OSM raster with the default chunking, 3 samples in 2 shards."""
    specs = modality_set("sentinel2_l2a,sentinel1,worldcover,srtm,openstreetmap_raster")
    path = tmp_path_factory.mktemp("wide") / "c.zarr"
    layout = create_corpus(path, samples=_samples(3), specs=specs, samples_per_shard=2)
    results = _results(specs, 3, np.random.default_rng(1))
    write_samples(path, layout=layout, specs=specs, results=results[:2])
    write_samples(path, layout=layout, specs=specs, results=results[2:])
    compute_norm_stats(path)
    return path, results


def test_direct_and_zarr_readers_give_identical_crops(wide_corpus: tuple[Path, list[SampleResult]]) -> None:
    path, _ = wide_corpus
    direct, via_zarr = CorpusReader(path), CorpusReader(path, direct=False)
    assert len(direct.direct_bandsets) == 7, "every bandset of the corpus layout takes the fast path"
    assert via_zarr.direct_bandsets == []
    rng = np.random.default_rng(2)
    for _ in range(25):
        size = int(rng.integers(1, 97))
        y0, x0 = (int(v) for v in rng.integers(0, 256 - size + 1, 2))
        first = int(rng.integers(0, 12))
        crop = Crop(y0=y0, x0=x0, size=size, periods=tuple(range(first, first + int(rng.integers(1, 13)))))
        row = int(rng.integers(0, 3))
        a, b = direct.read(row, crop), via_zarr.read(row, crop)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=f"{name} {crop}")
    assert direct.counters.chunks > 0 and via_zarr.counters.chunks == 0
    # spawned loader workers unpickle the reader: the copy must reopen its own shard files
    copy = pickle.loads(pickle.dumps(direct))
    direct.close()
    np.testing.assert_array_equal(copy.read(row, crop)["sentinel2_l2a"], b["sentinel2_l2a"])


def test_crops_equal_the_written_pixels_pooled_and_normalised(
    wide_corpus: tuple[Path, list[SampleResult]],
) -> None:
    path, results = wide_corpus
    reader = CorpusReader(path)
    crop = Crop(y0=37, x0=190, size=24, periods=(1, 2, 3))
    got = reader.read(2, crop)
    osm = results[2].modalities["openstreetmap_raster"].arrays["2_5m"][0]  # [30, 1024, 1024]
    window = osm[:, 4 * 37 : 4 * 61, 4 * 190 : 4 * 214].reshape(30, 24, 4, 24, 4).max(axis=(2, 4))
    offset, scale = reader.norm["openstreetmap_raster"]
    expected = (window.transpose(1, 2, 0).astype(np.float32) - offset) / scale
    np.testing.assert_allclose(got["openstreetmap_raster"][:, :, 0], expected, rtol=1e-6, atol=1e-6)
    s1 = got["sentinel1"]  # [24, 24, 3, 2]
    assert (s1[:, :, 1] == MISSING_VALUE).all()  # period 2 is absent
    written = results[2].modalities["sentinel1"].arrays["10m"][3, :, 37:61, 190:214]  # [2, 24, 24]
    nan = np.isnan(written).any(axis=0)  # a NaN in either band: the pixel cannot be fed, so missing
    assert nan.any() and (s1[:, :, 2][nan] == MISSING_VALUE).all()  # the swath edge
    assert not np.isnan(s1).any()
    offset, scale = reader.norm["sentinel1"]
    expected = (written.transpose(1, 2, 0) - offset) / scale
    np.testing.assert_allclose(s1[:, :, 2][~nan], expected[~nan], rtol=1e-5, atol=1e-5)


def test_chunking_follows_the_layout_parameter(tmp_path: Path) -> None:
    specs = modality_set("sentinel2_l2a,worldcover,openstreetmap_raster")
    create_corpus(tmp_path / "d.zarr", samples=_samples(2), specs=specs, samples_per_shard=2)
    group = zarr.open_group(str(tmp_path / "d.zarr"), mode="r")
    assert group["sentinel2_l2a/10m/data"].chunks == (1, 12, 4, 32, 32)  # the measured default
    assert group["sentinel2_l2a/20m/data"].chunks == (1, 12, 6, 16, 16)
    assert group["sentinel2_l2a/40m/data"].chunks == (1, 12, 2, 16, 16)
    assert group["worldcover/10m/data"].chunks == (1, 1, 64, 64)
    assert group["openstreetmap_raster/2_5m/data"].chunks == (1, 30, 32, 32)
    custom = Chunking.uniform(side_px=128, monthly_periods=1)
    create_corpus(tmp_path / "c.zarr", samples=_samples(2), specs=specs, samples_per_shard=2, chunking=custom)
    group = zarr.open_group(str(tmp_path / "c.zarr"), mode="r")
    assert group["sentinel2_l2a/10m/data"].chunks == (1, 1, 4, 128, 128)
    assert group["sentinel2_l2a/40m/data"].chunks == (1, 1, 2, 64, 64)  # clamped to the 64 px tile
    assert group["worldcover/10m/data"].chunks == (1, 1, 128, 128)
    assert group["sentinel2_l2a/10m/data"].shards == (2, 12, 4, 256, 256)  # shards never change
    assert dict(group.attrs["olmoearth"])["chunking"] == custom.to_dict()
    with pytest.raises(ValueError, match="power of two"):
        Chunking(monthly_px=((10.0, 48),))
    with pytest.raises(ValueError, match="must divide 12"):
        Chunking(monthly_periods=5)


def test_a_float_pixel_with_one_nan_band_is_missing_and_an_int_pixel_needs_every_band_nodata() -> None:
    from olmoearth_model.data.reader import _valid_pixels

    s1 = np.array([[[[1.0, np.nan, np.nan]], [[2.0, 3.0, np.nan]]]], dtype=np.float32)  # [T=1, C=2, 1, 3]
    np.testing.assert_array_equal(_valid_pixels(s1, modality_set("sentinel1")[0]), [[[True, False, False]]])
    s2 = np.array([[[[5, 0, 0]], [[0, 7, 0]]]], dtype=np.uint16)  # a 0 band is a valid dark value
    spec = modality_set("sentinel2_l2a")[0]
    np.testing.assert_array_equal(_valid_pixels(s2, spec), [[[True, True, False]]])
