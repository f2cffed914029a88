"""Sentinel-2 from the twin's real STAC API to composites, a cube, the loader and a trained Nano.

Every expectation comes from the twin's manifest or from reading the COG files directly, never from
the pipeline under test.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
import shapely
import xarray as xr
import zarr
from rasterio.windows import from_bounds

from olmoearth_data.build import GDAL_OPTIONS
from olmoearth_data.composite.coverage import select_covering
from olmoearth_data.composite.first_valid import first_valid
from olmoearth_data.grid import Tile
from olmoearth_data.materialise.harmonise import harmonise_sentinel2
from olmoearth_data.materialise.monthly import materialise_monthly
from olmoearth_data.missing import MissingReason, SampleStatus
from olmoearth_data.modalities import get_modality
from olmoearth_data.results import ModalityResult
from olmoearth_data.samples import Sample
from olmoearth_data.sources import get_source
from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy
from olmoearth_data.stac.search import SearchCache, search_sample
from olmoearth_twin import Catalog, Twin, parse_blob_url
from olmoearth_twin.catalog.samples import SMALL_SAMPLES

pytestmark = pytest.mark.twin

S2 = get_modality("sentinel2_l2a")
SOURCE = get_source("sentinel2_l2a")
SAMPLES = list(SMALL_SAMPLES)


@pytest.fixture(scope="module")
def catalog_config(twin: Twin) -> CatalogConfig:
    return CatalogConfig(
        stac_url=twin.stac_url,
        blob_endpoint=twin.assets_url,
        retry=RetryPolicy(attempts=3, backoff_s=0.01, timeout_s=30),
    )


@pytest.fixture(scope="module")
def manifest(twin_catalog: Catalog) -> dict[str, Any]:
    return twin_catalog.manifest()


@pytest.fixture(scope="module")
def composite(catalog_config: CatalogConfig, tmp_path_factory: pytest.TempPathFactory) -> ModalityResult:
    """Sample 0's S2 composites, materialised once for the module."""
    with rasterio.Env(**GDAL_OPTIONS):
        return materialise_monthly(
            sample=SAMPLES[0],
            spec=S2,
            source=SOURCE,
            client=catalog_config.open_client(),
            stac_url=catalog_config.stac_url,
            sign=catalog_config.signer(),
            cache=SearchCache(tmp_path_factory.mktemp("search-cache")),
        )


def _manifest_items(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["id"]: i for i in manifest["items"]}


def _manifest_periods(manifest: dict[str, Any], sample: Sample) -> list[list[str]]:
    entry = next(s for s in manifest["samples"] if s["tile_id"] == sample.tile.id)
    return [p["items"] for p in entry["periods"]]


def test_search_returns_manifest_items_in_compositing_order(
    catalog_config: CatalogConfig, manifest: dict[str, Any], tmp_path: Path
) -> None:
    cache = SearchCache(tmp_path)
    for sample in SAMPLES:
        got = search_sample(
            client=catalog_config.open_client(),
            source=SOURCE,
            tile=sample.tile,
            periods=sample.periods,
            stac_url=catalog_config.stac_url,
            cache=cache,
        )
        assert [[i["id"] for i in p.items] for p in got] == _manifest_periods(manifest, sample)
        for period in got:  # unsigned hrefs only, in the cache and in memory
            for item in period.items:
                assert all("sig=" not in a["href"] for a in item["assets"].values())
    cached = list((tmp_path / "sentinel-2-l2a").glob("*.json"))
    assert len(cached) == len(SAMPLES)
    assert "sig=" not in cached[0].read_text()


def _read_window(catalog: Catalog, href: str, tile: Tile) -> np.ndarray:
    ref = parse_blob_url(url=href)
    path = catalog.blobs_dir / ref.account / ref.container / ref.path
    with rasterio.open(path) as ds:
        window = from_bounds(*tile.bounds, transform=ds.transform)
        return ds.read(1, window=window, boundless=True, fill_value=0)


def test_composite_is_first_valid_of_known_scenes_least_cloudy_first(
    composite: ModalityResult, manifest: dict[str, Any], twin_catalog: Catalog
) -> None:
    """At 10 and 20 m (grids aligned with the COGs) the expected pixels are plain window reads."""
    items = _manifest_items(manifest)
    stac_items = {i["id"]: i for i in twin_catalog.items()}
    sample = SAMPLES[0]
    checked = 0
    for t, ids in enumerate(_manifest_periods(manifest, sample)):
        if not ids:
            assert not composite.present[t] and composite.reason[t] == MissingReason.NO_ITEMS
            assert (composite.arrays["10m"][t] == 0).all()  # absent months stay nodata, never zero "data"
            continue
        chosen = [d["id"] for d in select_covering([stac_items[i] for i in ids], tile=sample.tile)]
        assert chosen == ids[: len(chosen)]  # least cloudy first
        checked += 1
        for bs in S2.bandsets[:2]:
            expected = np.zeros_like(composite.arrays[bs.name][t])
            filled = np.zeros(expected.shape[1:], dtype=bool)
            for item_id in chosen:
                offset = items[item_id]["boa_add_offset"]
                stack = np.stack(
                    [
                        _read_window(twin_catalog, stac_items[item_id]["assets"][b]["href"], sample.tile)
                        for b in bs.bands
                    ]
                ).astype(np.int32)
                stack = np.where(stack == 0, 0, np.maximum(stack - offset, 1))
                valid = (stack != 0).any(axis=0)
                take = valid & ~filled
                expected[:, take] = stack[:, take]
                filled |= take
            np.testing.assert_array_equal(composite.arrays[bs.name][t], expected, err_msg=f"{bs.name} t={t}")
    assert checked >= 8


def _direct_first_valid(
    catalog: Catalog, items: list[dict[str, Any]], manifest_items: dict, tile: Tile, bands
):
    """Expected first-valid merge from plain window reads of the COG files (10/20 m grids are aligned)."""
    out, filled = None, None
    for item in items:
        offset = manifest_items[item["id"]]["boa_add_offset"]
        stack = np.stack([_read_window(catalog, item["assets"][b]["href"], tile) for b in bands]).astype(
            np.int32
        )
        stack = np.where(stack == 0, 0, np.maximum(stack - offset, 1))
        if out is None:
            out, filled = np.zeros_like(stack), np.zeros(stack.shape[1:], dtype=bool)
        take = (stack != 0).any(axis=0) & ~filled
        out[:, take] = stack[:, take]
        filled |= take
    return out


def test_gaps_are_filled_from_the_next_scene_across_baselines(
    manifest: dict[str, Any], twin_catalog: Catalog, catalog_config: CatalogConfig
) -> None:
    """A partial (swath-edge) scene first, then full scenes: the gap comes from the next one in order."""
    items = _manifest_items(manifest)
    stac_items = {i["id"]: i for i in twin_catalog.items()}
    tile = SAMPLES[0].tile
    partial = [i for i in items.values() if i["tile_stats"].get(tile.id, {}).get("valid_fraction", 1) < 0.5]
    full = [i for i in items.values() if i["tile_stats"].get(tile.id, {}).get("valid_fraction", 0) == 1.0]
    partial_offset = next(i for i in partial if i["boa_add_offset"] == 1000)
    full_plain = next(i for i in full if i["boa_add_offset"] == 0)
    order = [stac_items[partial_offset["id"]], stac_items[full_plain["id"]], stac_items[full[-1]["id"]]]
    chosen = select_covering(order, tile=tile)
    assert [c["id"] for c in chosen] == [partial_offset["id"], full_plain["id"]]
    pystac_items = [pystac.Item.from_dict(d) for d in chosen]
    with rasterio.Env(**GDAL_OPTIONS):
        for bs in S2.bandsets[:2]:
            merged = first_valid(
                pystac_items,
                assets=list(bs.bands),
                geobox=tile.geobox(pixel_size_m=bs.pixel_size_m),
                dtype="uint16",
                nodata=0,
                resampling="bilinear",
                sign=catalog_config.signer(),
                transform_item=harmonise_sentinel2,
            )
            expected = _direct_first_valid(twin_catalog, chosen, items, tile, bs.bands)
            np.testing.assert_array_equal(merged.data, expected)
            assert merged.used_item_ids == [c["id"] for c in chosen]
            assert (merged.data != 0).any(axis=0).all()  # the second scene closed the swath gap
        # The partial scene alone leaves nodata exactly where its footprint does not reach.
        alone = first_valid(
            pystac_items[:1],
            assets=["B04"],
            geobox=tile.geobox(pixel_size_m=10.0),
            dtype="uint16",
            nodata=0,
            resampling="bilinear",
            sign=catalog_config.signer(),
            transform_item=harmonise_sentinel2,
        )
    gbox = tile.geobox(pixel_size_m=10.0)
    cx, cy = np.meshgrid(
        gbox.transform.c + 5 + 10 * np.arange(256), gbox.transform.f - 5 - 10 * np.arange(256)
    )
    covered = shapely.contains_xy(shapely.from_wkt(partial_offset["valid_polygon_utm"]), cx, cy)
    np.testing.assert_array_equal(alone.data[0] != 0, covered)
    assert 0.2 < covered.mean() < 0.6


def test_nodata_only_where_no_selected_scene_covers(
    composite: ModalityResult, manifest: dict[str, Any], twin_catalog: Catalog
) -> None:
    items = _manifest_items(manifest)
    stac_items = {i["id"]: i for i in twin_catalog.items()}
    sample = SAMPLES[0]
    gbox = sample.tile.geobox(pixel_size_m=10.0)
    xs = gbox.transform.c + 5 + 10 * np.arange(256)
    ys = gbox.transform.f - 5 - 10 * np.arange(256)
    cx, cy = np.meshgrid(xs, ys)
    for t, ids in enumerate(_manifest_periods(manifest, sample)):
        if not ids:
            continue
        chosen = [d["id"] for d in select_covering([stac_items[i] for i in ids], tile=sample.tile)]
        covered = np.zeros((256, 256), dtype=bool)
        for item_id in chosen:
            polygon = shapely.from_wkt(items[item_id]["valid_polygon_utm"])
            covered |= shapely.contains_xy(polygon, cx, cy)
        valid = (composite.arrays["10m"][t] != 0).any(axis=0)
        np.testing.assert_array_equal(valid, covered, err_msg=f"period {t}")


def test_both_baselines_dark_pixels_and_grids(composite: ModalityResult, manifest: dict[str, Any]) -> None:
    items = _manifest_items(manifest)
    used = {i for ids in composite.item_ids for i in ids}
    assert {items[i]["boa_add_offset"] for i in used} == {0, 1000}
    b08 = composite.arrays["10m"][:, S2.bandsets[0].bands.index("B08")]
    present = composite.present
    dark = b08[present][(b08[present] > 0) & (b08[present] <= 50)]
    assert dark.size > 100, "dark valid water pixels must survive harmonisation"
    for bs in S2.bandsets:
        assert composite.arrays[bs.name].shape == (12, len(bs.bands), bs.pixels_per_tile, bs.pixels_per_tile)
    assert composite.present.sum() >= 6


@pytest.fixture(scope="module")
def corpus(s2_corpus: Path) -> Path:
    return s2_corpus


def test_cube_holds_the_composites_with_tile_grid_coordinates(
    corpus: Path, composite: ModalityResult
) -> None:
    tree = xr.open_datatree(corpus, engine="zarr")
    root = tree.dataset
    assert list(root["status"].values) == [SampleStatus.COMPLETE] * 2
    for bs in S2.bandsets:
        np.testing.assert_array_equal(
            tree[f"sentinel2_l2a/{bs.name}"].dataset["data"].values[0], composite.arrays[bs.name]
        )
    np.testing.assert_array_equal(tree["sentinel2_l2a"].dataset["present"].values[0], composite.present)
    tile = SAMPLES[0].tile
    assert (int(root["epsg"][0]), float(root["x0"][0]), float(root["y0"][0])) == (
        tile.epsg,
        tile.bounds[0],
        tile.bounds[3],
    )
    assert root["period_start"].values[0, 0] == np.datetime64(SAMPLES[0].periods[0].start)
    group = zarr.open_group(str(corpus), mode="r")
    assert group["sentinel2_l2a/20m/data"].attrs["pixel_size_m"] == 20.0


def test_loader_reads_what_was_composited(corpus: Path, composite: ModalityResult) -> None:
    from olmoearth_model.batch import MISSING_VALUE
    from olmoearth_model.data.reader import CorpusReader, Crop

    reader = CorpusReader(corpus)
    t = int(np.flatnonzero(composite.present)[0])
    got = reader.read(0, Crop(y0=17, x0=33, size=40, periods=(t,)))["sentinel2_l2a"][:, :, 0]
    offset, scale = reader.norm["sentinel2_l2a"]
    raw10 = composite.arrays["10m"][t][:, 17:57, 33:73].transpose(1, 2, 0).astype(np.float32)
    valid = (raw10 != 0).any(-1)
    expected = np.where(valid[..., None], (raw10 - offset[:4]) / scale[:4], MISSING_VALUE)
    np.testing.assert_allclose(got[..., :4], expected, rtol=1e-6)
    raw20 = composite.arrays["20m"][t][:, 8:29, 16:37].repeat(2, 1).repeat(2, 2)[:, 1:41, 1:41]
    raw20 = raw20.transpose(1, 2, 0).astype(np.float32)
    valid20 = (raw20 != 0).any(-1)
    expected20 = np.where(valid20[..., None], (raw20 - offset[4:10]) / scale[4:10], MISSING_VALUE)
    np.testing.assert_allclose(got[..., 4:10], expected20, rtol=1e-6)


def test_nano_probe_loss_falls_on_the_twin_corpus(corpus: Path, tmp_path: Path) -> None:
    from olmoearth_model.train.config import TrainConfig
    from olmoearth_model.train.loop import train
    from olmoearth_model.train.plot import plot_run, read_metrics

    config = TrainConfig().updated(
        f"data.corpus={corpus}", f"run_dir={tmp_path / 'run'}", "model.size=nano", "data.split=null",
        "schedule.max_steps=40", "data.global_batch=2", "data.microbatch=2", "data.token_budget=400",
        "data.patch_sizes=[4, 8]", "data.crop_tokens=[2, 4]", "metrics.probe_every=13", "optim.lr=1e-3",
        "optim.weight_decay=0.002", "schedule.warmup_steps=5",
    )  # fmt: skip
    run = train(config)
    probes = [r["probe_loss"] for r in read_metrics(run / "metrics.jsonl") if "probe_loss" in r]
    assert len(probes) >= 3
    assert probes[-1] < 0.95 * probes[0], probes
    assert (run / "config.yaml").exists() and (run / "model.pt").exists()
    assert plot_run(run).stat().st_size > 10_000


def test_periods_of_the_small_samples_are_what_the_twin_was_built_for() -> None:
    assert SAMPLES[0].periods[0].start == SMALL_SAMPLES[0].centre - dt.timedelta(days=187)
