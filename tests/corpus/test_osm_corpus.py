"""Issue #8 end to end on the twin: OSM fixture → samples → a 16-sample, 4-shard corpus of the whole
``default`` modality set built by 2 dask workers (``osm_corpus`` in conftest.py) → what analysts,
the loader and the norm stats read agrees with the data.

Expected values never come from the corpus itself: presence from the twin's manifests and files on
disk, pixel values from ``materialise_sample`` run directly per tile, stats from plain numpy over the
stored arrays (valid pixels of present periods, as docs/corpus-schema.md defines them).
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import xarray as xr
import zarr
from pyproj import Transformer
from rasterio.warp import transform_bounds
from rasterio.windows import from_bounds
from shapely.geometry import box, shape

from olmoearth_data.cube.layout import nodata_fill, open_layout
from olmoearth_data.index import index_path
from olmoearth_data.missing import MissingReason, SampleStatus
from olmoearth_data.modalities import ModalitySpec, modality_set
from olmoearth_data.periods import span
from olmoearth_data.samples import Sample
from olmoearth_data.sources import get_source
from olmoearth_data.stats import PREDEFINED_RANGES
from olmoearth_twin import parse_blob_url

from .osm_corpus_build import DATES_PER_TILE, SAMPLES_PER_SHARD, OsmCorpus

pytestmark = [pytest.mark.twin, pytest.mark.slow]

DEFAULT = modality_set("default")
#: Monthly modality → (twin manifest, key of a period's item list in it).
MONTHLY_MANIFEST = {
    "sentinel2_l2a": ("sentinel2", "items"),
    "sentinel1": ("collections", "sentinel-1-rtc"),
    "landsat_l2": ("collections", "landsat-c2-l2"),
}


def _sample_entry(manifest: dict[str, Any], sample: Sample) -> dict[str, Any]:
    return next(
        s for s in manifest["samples"]
        if s["tile_id"] == sample.tile.id and s["centre"] == sample.centre.isoformat()
    )  # fmt: skip


def _pixel_valid(spec: ModalitySpec, x: np.ndarray, band_axis: int) -> np.ndarray:
    """A pixel is missing when every band of its bandset equals nodata (docs/corpus-schema.md)."""
    fill = nodata_fill(spec)
    if spec.nodata is None:
        return np.ones(np.delete(x.shape, band_axis), dtype=bool)
    if isinstance(fill, float) and np.isnan(fill):
        return ~np.isnan(x).all(axis=band_axis)
    return ~(x == fill).all(axis=band_axis)


def test_corpus_has_16_samples_in_4_shards_all_complete(osm_corpus: OsmCorpus) -> None:
    n = len(osm_corpus.samples)
    assert n >= 16 and len({s.tile.id for s in osm_corpus.samples}) * DATES_PER_TILE == n
    layout, meta = open_layout(osm_corpus.corpus)
    assert (layout.n_samples, layout.samples_per_shard) == (n, SAMPLES_PER_SHARD)
    assert layout.n_shards >= 4
    s = osm_corpus.summary
    assert (s.samples, s.shards_total, s.shards_built) == (n, layout.n_shards, layout.n_shards)
    assert (s.complete, s.dropped) == (n, 0)
    assert meta["build_config"]["workers"] == 2 and meta["build_config"]["modalities"] == "default"
    group = zarr.open_group(str(osm_corpus.corpus), mode="r")
    assert list(group["tile_id"][:]) == [smp.tile.id for smp in osm_corpus.samples]


def test_open_datatree_shows_every_modality_and_bandset(osm_corpus: OsmCorpus) -> None:
    tree = xr.open_datatree(osm_corpus.corpus, engine="zarr")
    n = len(osm_corpus.samples)
    assert tree.dataset.sizes["sample"] == n
    assert {"tile_id", "epsg", "centre_date", "status", "lon", "lat"} <= set(tree.dataset.variables)
    for spec in DEFAULT:
        node = tree[spec.name]
        assert {"present", "reason"} <= set(node.dataset.variables), spec.name
        for bs in spec.bandsets:
            data = node[bs.name].dataset["data"]
            dims = ("sample", "period", "band", "y", "x")
            assert data.dims == (dims if spec.is_multitemporal else dims[:1] + dims[2:]), (spec.name, bs.name)
            assert list(data["band"].values) == list(bs.bands)
            assert data.sizes["y"] == data.sizes["x"] == bs.pixels_per_tile


def test_data_present_where_the_twin_has_it(osm_corpus: OsmCorpus) -> None:
    """Monthly periods are present exactly where the twin's catalogue has items for the sample's
    search; static STAC layers where an intersecting item's file has a valid pixel over the tile; the
    tile-index maps and the OSM raster (the fixture's extent covers every tile) everywhere; CDL nowhere
    (Kotka is outside CONUS)."""
    group = zarr.open_group(str(osm_corpus.corpus), mode="r")
    for name, (which, key) in MONTHLY_MANIFEST.items():
        catalog = getattr(osm_corpus.catalogs, which)
        geometry = {i["id"]: i["geometry"] for i in catalog.items()}
        present, reason = group[f"{name}/present"][:], group[f"{name}/reason"][:]
        assert present.any(), name
        for row, sample in enumerate(osm_corpus.samples):
            for p, period in enumerate(_sample_entry(catalog.manifest(), sample)["periods"]):
                if not period[key]:
                    assert not present[row, p] and reason[row, p] == MissingReason.NO_ITEMS, (name, row, p)
                elif not present[row, p]:
                    # The greedy coverage rule (data spec §4.2) skips a scene overlapping < 10 % of the
                    # tile (a swath edge grazing it): such a period has no usable item.
                    overlap = max(_tile_overlap(geometry[i], sample) for i in period[key])
                    assert overlap < 0.10 and reason[row, p] == MissingReason.NO_ITEMS, (
                        name,
                        row,
                        p,
                        overlap,
                    )
        # most periods with items are present: the twin's scenes cover the tiles
        has_items = [
            [bool(p[key]) for p in _sample_entry(catalog.manifest(), s)["periods"]]
            for s in osm_corpus.samples
        ]
        assert present.sum() >= 0.9 * np.sum(has_items), name

    collections = osm_corpus.catalogs.collections
    items = {(i["collection"], i["id"]): i for i in collections.items()}
    for name in ("worldcover", "srtm", "cdl"):
        source = get_source(name)
        present, reason = group[f"{name}/present"][:], group[f"{name}/reason"][:]
        for row, sample in enumerate(osm_corpus.samples):
            ids = _sample_entry(collections.manifest(), sample)["static"][source.collection]
            has_data = any(
                _file_has_data_over(collections, items[source.collection, i], source.bands[0].asset, sample)
                for i in ids
            )
            assert bool(present[row]) == has_data, (name, row)
            if not ids:
                expected = MissingReason.OUTSIDE_COVERAGE if source.regional else MissingReason.NO_ITEMS
                assert reason[row] == expected, (name, row)
    assert (group["cdl/reason"][:] == MissingReason.OUTSIDE_COVERAGE).all()
    assert group["srtm/present"][:].all()
    for name in ("wri_canopy_height_map", "worldcereal", "openstreetmap_raster"):
        assert group[f"{name}/present"][:].all(), name
    osm = group["openstreetmap_raster/2_5m/data"]
    osm_sums = [int(osm[i].sum()) for i in range(len(osm_corpus.samples))]
    assert min(osm_sums) > 0, osm_sums  # the city's features land on every tile


def _tile_overlap(geometry: dict[str, Any], sample: Sample) -> float:
    """Share of the sample's tile inside an item's lon/lat footprint (computed in the tile's CRS)."""
    to_tile = Transformer.from_crs(4326, sample.tile.epsg, always_xy=True)
    footprint = shapely.transform(shape(geometry), lambda xy: np.column_stack(to_tile.transform(*xy.T)))
    tile = box(*sample.tile.bounds)
    return shapely.make_valid(footprint).intersection(tile).area / tile.area


def _file_has_data_over(catalog, item: dict[str, Any], asset: str, sample: Sample) -> bool:
    """Whether the twin's COG behind ``item[asset]`` has a non-nodata pixel over the sample's tile."""
    ref = parse_blob_url(url=item["assets"][asset]["href"])
    with rasterio.open(catalog.blobs_dir / ref.account / ref.container / ref.path) as ds:
        bounds = transform_bounds(f"EPSG:{sample.tile.epsg}", ds.crs, *sample.tile.bounds)
        window = from_bounds(*bounds, transform=ds.transform)
        data = ds.read(1, window=window, boundless=True, fill_value=ds.nodata)
        return bool((data != ds.nodata).any())


def test_values_equal_per_tile_materialisation(osm_corpus: OsmCorpus) -> None:
    group = zarr.open_group(str(osm_corpus.corpus), mode="r")
    assert len(osm_corpus.direct) >= 2
    for row, result in osm_corpus.direct.items():
        assert group["status"][row] == result.status == SampleStatus.COMPLETE
        assert set(result.modalities) == {s.name for s in DEFAULT}
        for spec in DEFAULT:
            got = result.modalities[spec.name]
            # static modalities store one value per sample where a result holds a 1-element period axis
            t = slice(None) if spec.is_multitemporal else 0
            np.testing.assert_array_equal(group[f"{spec.name}/present"][row], got.present[t])
            np.testing.assert_array_equal(group[f"{spec.name}/reason"][row], got.reason[t])
            for bs in spec.bandsets:
                stored = group[f"{spec.name}/{bs.name}/data"][row]
                direct = got.arrays[bs.name][t]
                assert stored.dtype == direct.dtype, (spec.name, bs.name)
                np.testing.assert_array_equal(stored, direct, err_msg=f"row {row} {spec.name}/{bs.name}")


def test_index_agrees_with_the_arrays_and_the_data(osm_corpus: OsmCorpus) -> None:
    """The GeoParquet index: one row per sample with the table's tile and dates, status, presence and
    reasons equal to the arrays, item ids equal to a direct run; and each period is present exactly
    when its stored data has a valid pixel."""
    group = zarr.open_group(str(osm_corpus.corpus), mode="r")
    index = gpd.read_parquet(index_path(osm_corpus.corpus))
    samples = osm_corpus.samples
    assert list(index["sample"]) == list(range(len(samples)))
    assert list(index["tile_id"]) == [s.tile.id for s in samples]
    assert [d.date() for d in index["datetime"]] == [s.centre for s in samples]
    assert [d.date() for d in index["start_datetime"]] == [s.periods[0].start for s in samples]
    assert [d.date() for d in index["end_datetime"]] == [s.periods[-1].end for s in samples]
    assert index.crs.to_epsg() == 4326
    for geom, s in zip(index.geometry, samples, strict=True):
        assert geom.equals_exact(s.tile.polygon_lonlat(), 1e-9)
    np.testing.assert_array_equal(index["status"], group["status"][:])
    for spec in DEFAULT:
        present = group[f"{spec.name}/present"][:].reshape(len(samples), -1)
        reason = group[f"{spec.name}/reason"][:].reshape(len(samples), -1)
        np.testing.assert_array_equal(index[f"{spec.name}:present"], present.sum(axis=1))
        assert [list(r) for r in index[f"{spec.name}:reason"]] == reason.tolist()
        for row, result in osm_corpus.direct.items():
            ids = [list(p) for p in index.loc[row, f"{spec.name}:item_ids"]]
            assert ids == [list(p) for p in result.modalities[spec.name].item_ids], (spec.name, row)
        if spec.nodata is None:  # OSM raster: 0 is data ("no feature"), presence is the input's extent
            continue
        for row in range(len(samples)):
            has_valid = np.zeros(present.shape[1], dtype=bool)
            for bs in spec.bandsets:
                x = group[f"{spec.name}/{bs.name}/data"][row]
                x = x if spec.is_multitemporal else x[None]  # [T, C, H, W]
                has_valid |= _pixel_valid(spec, x, 1).any(axis=(-2, -1))
            np.testing.assert_array_equal(present[row], has_valid, err_msg=f"{spec.name} row {row}")


def test_norm_stats_equal_numpy_over_valid_pixels_of_present_periods(osm_corpus: OsmCorpus) -> None:
    group = zarr.open_group(str(osm_corpus.corpus), mode="r")
    complete = group["status"][:] == SampleStatus.COMPLETE
    for spec in DEFAULT:
        stored = dict(group[spec.name].attrs["norm_stats"])
        assert stored == osm_corpus.stats[spec.name], spec.name
        if spec.name in PREDEFINED_RANGES:
            lo, hi = PREDEFINED_RANGES[spec.name]
            assert stored == {b: {"min": lo, "max": hi} for b in spec.bands}
            continue
        present = group[f"{spec.name}/present"][:]
        band_axis = 1 if spec.is_multitemporal else 0
        for bs in spec.bandsets:
            values: list[list[np.ndarray]] = [[] for _ in bs.bands]
            for row in np.flatnonzero(complete):
                x = group[f"{spec.name}/{bs.name}/data"][row]  # [T, C, H, W] or [C, H, W]
                valid = _pixel_valid(spec, x, band_axis)
                valid &= present[row].reshape(-1, 1, 1) if spec.is_multitemporal else bool(present[row])
                for j in range(len(bs.bands)):
                    values[j].append(np.take(x, j, axis=band_axis)[valid])
            for j, band in enumerate(bs.bands):
                v = np.concatenate(values[j])
                got = stored[band]
                assert got["count"] == v.size, (spec.name, band)
                if v.size == 0:
                    continue
                want_mean, want_std = np.mean(v, dtype=np.float64), np.std(v, dtype=np.float64)
                np.testing.assert_allclose(got["mean"], want_mean, rtol=1e-5, err_msg=f"{spec.name} {band}")
                np.testing.assert_allclose(got["std"], want_std, rtol=1e-5, err_msg=f"{spec.name} {band}")
    # Sentinel-1 is normalised in the space the model sees: dB, not linear γ0 (which is ≥ 0, mostly < 1).
    s1 = osm_corpus.stats["sentinel1"]
    assert all(-40 < s1[b]["mean"] < 0 and s1[b]["count"] > 0 for b in ("vv", "vh")), s1


def test_sample_table_rows_are_tiles_times_disjoint_years(osm_corpus: OsmCorpus) -> None:
    """The sampler's ``--dates-per-tile 4`` rows: each tile 4 times, its windows disjoint."""
    by_tile: dict[str, list[dt.date]] = {}
    for s in osm_corpus.samples:
        by_tile.setdefault(s.tile.id, []).append(s.centre)
    assert len(by_tile) == 4 and all(len(d) == DATES_PER_TILE for d in by_tile.values())
    for dates in by_tile.values():
        windows = sorted(span(centre=d) for d in dates)
        assert all(a.end <= b.start for a, b in itertools.pairwise(windows)), dates
