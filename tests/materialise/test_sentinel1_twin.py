"""Sentinel-1 RTC from the twin: monthly first-valid composites in dB, stable order, account gating.

Expectations come from the twin's manifest (which items a search returns, in datetime-then-id order)
and from window reads of the COG files (the S1 COGs are on the tiles' 10 m UTM grid).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import planetary_computer
import pytest
import rasterio
import requests

from olmoearth_data.build import GDAL_OPTIONS, BuildConfig, build_corpus
from olmoearth_data.composite.coverage import select_covering
from olmoearth_data.materialise.monthly import materialise_monthly
from olmoearth_data.missing import MissingReason
from olmoearth_data.modalities import get_modality
from olmoearth_data.results import ModalityResult
from olmoearth_data.samples import write_sample_table
from olmoearth_data.sources import get_source
from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy
from olmoearth_data.stac.search import SearchCache
from olmoearth_twin import Catalog, Twin

from .materialise_helpers import SAMPLES, blob_path, read_aligned, sample_entry, subscription_key

pytestmark = pytest.mark.twin

S1 = get_modality("sentinel1")
SOURCE = get_source("sentinel1")


@pytest.fixture(scope="module")
def catalog_config(twin: Twin) -> CatalogConfig:
    return CatalogConfig(
        stac_url=twin.stac_url,
        blob_endpoint=twin.assets_url,
        retry=RetryPolicy(attempts=3, backoff_s=0.01, timeout_s=30),
    )


def _materialise(config: CatalogConfig, sample_index: int, cache: SearchCache | None) -> ModalityResult:
    with subscription_key(), rasterio.Env(**GDAL_OPTIONS):
        return materialise_monthly(
            sample=SAMPLES[sample_index],
            spec=S1,
            source=SOURCE,
            client=config.open_client(),
            stac_url=config.stac_url,
            sign=config.signer(),
            cache=cache,
        )


@pytest.fixture(scope="module")
def composites(
    twin_collections: Catalog, catalog_config: CatalogConfig, tmp_path_factory: pytest.TempPathFactory
) -> dict[int, ModalityResult]:
    cache = SearchCache(tmp_path_factory.mktemp("s1-cache"))
    return {i: _materialise(catalog_config, i, cache) for i in (0, 2)}


def _expected_db(catalog: Catalog, items: dict[str, Any], ids: list[str], sample_index: int) -> np.ndarray:
    """First valid over ``ids`` in order on the linear values (−32768 → NaN), then 10·log10(max(x, 1e-10))."""
    tile = SAMPLES[sample_index].tile
    out = np.full((2, 256, 256), np.nan, dtype=np.float32)
    for item_id in ids:
        stack = np.stack(
            [
                read_aligned(blob_path(catalog, items[item_id]["assets"][pol]["href"]), tile, fill=-32768)
                for pol in ("vv", "vh")
            ]
        ).astype(np.float32)
        stack[stack == -32768] = np.nan
        take = ~np.isnan(stack).all(axis=0) & np.isnan(out).all(axis=0)
        out[:, take] = stack[:, take]
    with np.errstate(invalid="ignore"):
        db = (10 * np.log10(np.fmax(out.astype(np.float64), 1e-10))).astype(np.float32)
    db[np.isnan(out)] = np.nan
    return db


@pytest.mark.parametrize("sample_index", [0, 2])
def test_s1_composites_equal_direct_reads_in_db(
    composites: dict[int, ModalityResult], twin_collections: Catalog, sample_index: int
) -> None:
    result = composites[sample_index]
    items = {i["id"]: i for i in twin_collections.items()}
    periods = sample_entry(twin_collections.manifest(), SAMPLES[sample_index])["periods"]
    assert result.arrays["10m"].shape == (12, 2, 256, 256) and result.arrays["10m"].dtype == np.float32
    partial = 0
    tile = SAMPLES[sample_index].tile
    for t, period in enumerate(periods):
        # The reference's greedy coverage rule (tested with S2) may skip a sliver-only scene.
        ids = [d["id"] for d in select_covering([items[i] for i in period["sentinel-1-rtc"]], tile=tile)]
        assert ids == period["sentinel-1-rtc"][: len(ids)] or not ids
        if not ids:
            assert not result.present[t] and result.reason[t] == MissingReason.NO_ITEMS
            assert np.isnan(result.arrays["10m"][t]).all()
            continue
        expected = _expected_db(twin_collections, items, ids, sample_index)
        got = result.arrays["10m"][t]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=f"nodata mask t={t}")
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4, err_msg=f"t={t}")
        assert result.present[t] and result.reason[t] == MissingReason.PRESENT
        assert result.item_ids[t] == [i for i in ids if i in result.item_ids[t]]  # manifest order
        assert set(result.item_ids[t]) <= set(ids)
        partial += int(np.isnan(got).any())
        valid = got[~np.isnan(got)]
        assert valid.min() > -45 and valid.max() < 10  # dB, not linear power
    assert result.present.sum() >= 6
    assert partial >= 1, "ascending passes leave a swath edge: nodata must stay NaN, never 0 dB"


def test_s1_order_and_values_are_stable_across_runs(
    composites: dict[int, ModalityResult], catalog_config: CatalogConfig
) -> None:
    again = _materialise(catalog_config, 0, cache=None)  # a fresh search, no cache
    assert again.item_ids == composites[0].item_ids
    np.testing.assert_array_equal(again.arrays["10m"], composites[0].arrays["10m"])


def test_twin_refuses_s1_tokens_without_a_subscription_key(twin: Twin, twin_collections: Catalog) -> None:
    href = next(i for i in twin_collections.items() if i["collection"] == "sentinel-1-rtc")["assets"]["vv"][
        "href"
    ]
    with subscription_key(None):
        with pytest.raises(requests.HTTPError) as refused:
            planetary_computer.sign_url(href)
        assert refused.value.response.status_code == 401
    with subscription_key():
        assert "sig=" in planetary_computer.sign_url(href)


def test_build_stops_before_any_work_without_a_key(
    twin: Twin, twin_collections: Catalog, catalog_config: CatalogConfig, tmp_path: Path
) -> None:
    table = tmp_path / "samples.parquet"
    write_sample_table(table, samples=SAMPLES[2:])
    config = BuildConfig(
        corpus=str(tmp_path / "s1.zarr"),
        sample_table=str(table),
        modalities="sentinel1",
        cache_dir=str(tmp_path / "cache"),
        catalog=catalog_config,
    )
    with subscription_key(None), pytest.raises(RuntimeError, match="PC_SDK_SUBSCRIPTION_KEY"):
        build_corpus(config)
    assert not (tmp_path / "s1.zarr").exists() and not (tmp_path / "cache").exists()
