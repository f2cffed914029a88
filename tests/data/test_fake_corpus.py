"""The fake corpus (``olmoearth_data.testing``) is a built corpus in everything but its pixels."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from olmoearth_data.cube.layout import SCHEMA_VERSION, nodata_fill, open_layout
from olmoearth_data.grid import Tile
from olmoearth_data.index import index_path
from olmoearth_data.missing import MissingReason, SampleStatus
from olmoearth_data.modalities import registry_from_dict
from olmoearth_data.periods import monthly_periods
from olmoearth_data.testing import write_fake_corpus
from olmoearth_data.testing_plugin import FAKE_CORPUS
from olmoearth_model.data.reader import CorpusReader

EPOCH = np.datetime64("1970-01-01", "D")


def _valid(frames: np.ndarray, fill: float | int) -> np.ndarray:
    """``[..., H, W]`` of ``[..., C, H, W]``: some band holds data (the reader's rule for int data)."""
    nodata = np.isnan(frames) if isinstance(fill, float) else frames == fill
    return ~nodata.all(axis=-3)


def test_the_session_fake_corpus_is_what_a_build_writes(fake_corpus: Path) -> None:
    layout, meta = open_layout(fake_corpus)
    assert (layout.n_samples, layout.samples_per_shard, layout.n_shards) == (7, 2, 4)  # last shard partial
    assert meta["schema_version"] == SCHEMA_VERSION and meta["fake_corpus"]["seed"] == FAKE_CORPUS["seed"]
    specs = registry_from_dict(meta["modalities"])
    assert [s.name for s in specs] == FAKE_CORPUS["modalities"].split(",")
    assert set(meta["sources"]) == {s.name for s in specs}
    group = zarr.open_consolidated(str(fake_corpus), mode="r")  # consolidated, as after a build

    status = group["status"][:]
    assert sorted(status.tolist()) == [SampleStatus.COMPLETE] * 6 + [SampleStatus.DROPPED]
    (dropped,) = np.flatnonzero(status == SampleStatus.DROPPED)
    assert group["status_reason"][dropped] == "no observation (S2/S1/Landsat) data in any period"

    # Real tiles and each sample's real periods.
    for i, tile_id in enumerate(group["tile_id"][:]):
        tile = Tile.from_id(str(tile_id))
        assert tile.contains_lonlat(lon=float(group["lon"][i]), lat=float(group["lat"][i]))
        centre = (EPOCH + int(group["centre_date"][i])).astype(dt.date)
        starts = [(EPOCH + int(d)).astype(dt.date) for d in group["period_start"][i]]
        assert starts == [p.start for p in monthly_periods(centre=centre)]
    assert len({str(t).split("_")[0] for t in group["tile_id"][:]}) >= 5  # several UTM zones

    reasons_seen, swaths = set(), 0
    for spec in specs:
        present = group[f"{spec.name}/present"][:].reshape(7, -1)
        reason = group[f"{spec.name}/reason"][:].reshape(7, -1)
        np.testing.assert_array_equal(present, reason == MissingReason.PRESENT)
        reasons_seen |= set(reason[~present].tolist())
        if not spec.is_map:
            assert not present[dropped].any()  # what makes the row dropped
        assert present.any() and not present.all()  # a mix, in every modality
        fill = nodata_fill(spec)
        for bs in spec.bandsets:
            data = group[f"{spec.name}/{bs.name}/data"][:].reshape(7, present.shape[1], len(bs.bands), -1, 1)
            valid = _valid(data, fill)  # [sample, T, pixels, 1]
            assert not valid[~present].any()  # absent periods hold nodata only
            per_frame = valid[present].reshape(int(present.sum()), -1).mean(axis=1)
            assert (per_frame > 0).all()  # a present period has data...
            swaths += int((per_frame < 1).sum())  # ...not always everywhere (swath edges)
    assert {MissingReason.NO_ITEMS, MissingReason.ALL_NODATA} <= reasons_seen and swaths > 0
    # The second complete row has only its first monthly modality: S1 absent for that whole sample.
    complete = np.flatnonzero(status == SampleStatus.COMPLETE)
    assert (
        not group["sentinel1/present"][complete[1]].any()
        and group["sentinel2_l2a/present"][complete[1]].any()
    )

    # The merged index agrees with the arrays; item ids exactly for present periods.
    index = pd.read_parquet(index_path(fake_corpus))
    assert index["sample"].tolist() == list(range(7)) and index["status"].tolist() == status.tolist()
    for spec in specs:
        present = group[f"{spec.name}/present"][:].reshape(7, -1)
        assert index[f"{spec.name}:present"].tolist() == present.sum(axis=1).tolist()
        for row, ids in zip(present, index[f"{spec.name}:item_ids"], strict=True):
            assert [len(x) > 0 for x in ids] == row.tolist()

    # Norm stats over every band, and the loader reads it.
    for spec in specs:
        stats = dict(group[spec.name].attrs["norm_stats"])
        assert set(stats) == set(spec.bands) and all(v["std"] > 0 for v in stats.values())
    reader = CorpusReader(fake_corpus)
    np.testing.assert_array_equal(reader.complete_indices, complete)
    assert len(reader.direct_bandsets) == sum(s.num_bandsets for s in specs)


def test_same_seed_same_corpus_other_seed_other_pixels(tmp_path: Path) -> None:
    kw = {"n_samples": 2, "modalities": "sentinel1,srtm", "samples_per_shard": 1, "n_dropped": 0}
    a = write_fake_corpus(path=tmp_path / "a.zarr", seed=5, **kw)
    b = write_fake_corpus(path=tmp_path / "b.zarr", seed=5, **kw)
    c = write_fake_corpus(path=tmp_path / "c.zarr", seed=6, **kw)
    ga, gb, gc = (zarr.open_group(str(p), mode="r") for p in (a, b, c))
    names = ("tile_id", "centre_date", "sentinel1/present", "sentinel1/reason", "sentinel1/10m/data")
    for name in (*names, "srtm/10m/data"):
        np.testing.assert_array_equal(ga[name][:], gb[name][:], err_msg=name)  # NaN == NaN here
    assert list(ga["tile_id"][:]) != list(gc["tile_id"][:])
    assert not np.array_equal(ga["srtm/10m/data"][:], gc["srtm/10m/data"][:])
    assert dict(ga["srtm"].attrs["norm_stats"]) == dict(gb["srtm"].attrs["norm_stats"])
    with pytest.raises(FileExistsError):
        write_fake_corpus(path=a, seed=5, **kw)


@pytest.mark.slow
def test_every_modality_of_the_default_set_can_be_faked(tmp_path: Path) -> None:
    path = write_fake_corpus(path=tmp_path / "d.zarr", n_samples=2, modalities="default", samples_per_shard=1,
                             n_dropped=0, seed=1)  # fmt: skip
    group = zarr.open_group(str(path), mode="r")
    specs = registry_from_dict(dict(group.attrs["olmoearth"])["modalities"])
    assert len(specs) == 9
    for spec in specs:
        for bs in spec.bandsets:
            arr = group[f"{spec.name}/{bs.name}/data"]
            assert arr.dtype == np.dtype(spec.dtype)
            present = group[f"{spec.name}/present"][:].reshape(2, -1)
            if present.any():
                valid = _valid(arr[:].reshape(2, present.shape[1], len(bs.bands), -1, 1), nodata_fill(spec))
                assert valid[present].any(), (spec.name, bs.name)
    assert set(group["cdl/reason"][:].tolist()) <= {MissingReason.PRESENT, MissingReason.OUTSIDE_COVERAGE,
                                                    MissingReason.NO_ITEMS, MissingReason.ALL_NODATA,
                                                    MissingReason.READ_FAILED}  # fmt: skip


def _schema(path: Path) -> dict[str, tuple]:
    """Every array of a store: dtype, shape past the sample axis, chunks, shards, fill, dims, attr keys."""
    out = {}

    def walk(group: zarr.Group, prefix: str) -> None:
        for name, arr in group.arrays():
            fill = arr.metadata.fill_value
            out[prefix + name] = (
                str(arr.dtype), arr.shape[1:], arr.chunks[1:], (arr.shards or ())[1:],
                "nan" if isinstance(fill, float) and np.isnan(fill) else str(fill),
                arr.metadata.dimension_names, sorted(arr.attrs),
            )  # fmt: skip
        for name, sub in group.groups():
            out[prefix + name + "/"] = tuple(sorted(sub.attrs))
            walk(sub, prefix + name + "/")

    walk(zarr.open_group(str(path), mode="r"), "")
    return out


@pytest.mark.twin
def test_the_fake_corpus_has_the_layout_of_a_corpus_built_from_the_twin(
    s2_corpus: Path, tmp_path: Path
) -> None:
    fake = write_fake_corpus(path=tmp_path / "fake.zarr", n_samples=3, modalities="s2", samples_per_shard=1,
                             n_dropped=0)  # fmt: skip
    assert _schema(fake) == _schema(s2_corpus)
    real_meta, fake_meta = open_layout(s2_corpus)[1], open_layout(fake)[1]
    assert set(real_meta) - {"build_config"} == set(fake_meta) - {"fake_corpus"}
    assert (
        fake_meta["modalities"] == real_meta["modalities"] and fake_meta["chunking"] == real_meta["chunking"]
    )
    real_index, fake_index = pd.read_parquet(index_path(s2_corpus)), pd.read_parquet(index_path(fake))
    assert list(fake_index.columns) == list(real_index.columns)
    assert dict(fake_index.dtypes.astype(str)) == dict(real_index.dtypes.astype(str))
