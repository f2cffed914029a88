"""Landsat 8/9 C2 L2 from the twin: monthly composites, least cloudy first, L2SR items without thermal.

Expectations come from the twin's manifest (search results sorted by cloud cover then id) and from the
COG files warped onto the tile's 20 m grid with rasterio (bilinear), not with the pipeline's odc-stac path.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from olmoearth_data.build import GDAL_OPTIONS
from olmoearth_data.composite.coverage import select_covering
from olmoearth_data.materialise.monthly import materialise_monthly
from olmoearth_data.missing import MissingReason
from olmoearth_data.modalities import get_modality
from olmoearth_data.results import ModalityResult
from olmoearth_data.sources import get_source
from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy
from olmoearth_data.stac.search import SearchCache, search_sample
from olmoearth_twin import Catalog, Twin

from .materialise_helpers import SAMPLES, landsat_first_valid, sample_entry

pytestmark = pytest.mark.twin

LANDSAT = get_modality("landsat_l2")
SOURCE = get_source("landsat_l2")


@pytest.fixture(scope="module")
def catalog_config(twin: Twin) -> CatalogConfig:
    return CatalogConfig(
        stac_url=twin.stac_url,
        blob_endpoint=twin.assets_url,
        retry=RetryPolicy(attempts=3, backoff_s=0.01, timeout_s=30),
    )


@pytest.fixture(scope="module")
def composite(
    twin_collections: Catalog, catalog_config: CatalogConfig, tmp_path_factory: pytest.TempPathFactory
) -> ModalityResult:
    with rasterio.Env(**GDAL_OPTIONS):
        return materialise_monthly(
            sample=SAMPLES[2],
            spec=LANDSAT,
            source=SOURCE,
            client=catalog_config.open_client(),
            stac_url=catalog_config.stac_url,
            sign=catalog_config.signer(),
            cache=SearchCache(tmp_path_factory.mktemp("landsat-cache")),
        )


def test_search_keeps_l2sr_items_in_cloud_cover_order(
    twin_collections: Catalog, catalog_config: CatalogConfig
) -> None:
    periods = sample_entry(twin_collections.manifest(), SAMPLES[2])["periods"]
    got = search_sample(
        client=catalog_config.open_client(),
        source=SOURCE,
        tile=SAMPLES[2].tile,
        periods=SAMPLES[2].periods,
        stac_url=catalog_config.stac_url,
        cache=None,
    )
    assert [[i["id"] for i in p.items] for p in got] == [p["landsat-c2-l2"] for p in periods]
    found = [i for p in got for i in p.items]
    assert any("lwir11" not in i["assets"] for i in found), "the twin's L2SR items must be searched too"
    assert {i["properties"]["platform"] for i in found} == {"landsat-8", "landsat-9"}


def test_landsat_composites_equal_direct_warps(composite: ModalityResult, twin_collections: Catalog) -> None:
    items = {i["id"]: i for i in twin_collections.items()}
    periods = sample_entry(twin_collections.manifest(), SAMPLES[2])["periods"]
    assert composite.arrays["20m"].shape == (12, 8, 128, 128) and composite.arrays["20m"].dtype == np.uint16
    l2sr_first = 0
    for t, period in enumerate(periods):
        ids = [
            d["id"]
            for d in select_covering([items[i] for i in period["landsat-c2-l2"]], tile=SAMPLES[2].tile)
        ]
        if not ids:
            assert not composite.present[t]
            assert (composite.arrays["20m"][t] == 0).all()
            continue
        assert ids == period["landsat-c2-l2"][: len(ids)]  # least cloudy first
        rest = [i for i in period["landsat-c2-l2"] if i not in ids]
        expected = landsat_first_valid(twin_collections, items, ids, SAMPLES[2].tile, fallback=rest)
        got = composite.arrays["20m"][t]
        np.testing.assert_array_equal((got != 0).any(axis=0), (expected != 0).any(axis=0), err_msg=f"t={t}")
        diff = np.abs(got.astype(np.int32) - expected.astype(np.int32))
        assert diff.max() <= 1, f"t={t}: max DN difference {diff.max()}"
        assert composite.present[t] and composite.reason[t] == MissingReason.PRESENT
        if "lwir11" not in items[ids[0]]["assets"]:
            l2sr_first += 1
            # The L2SR scene's SR pixels count; its B10 comes from the period's next L2SP scene, if any.
            assert (got[:7] != 0).any()
            if any("lwir11" in items[i]["assets"] for i in rest):
                assert (got[7] != 0).any()
    assert composite.present.sum() >= 6
    assert l2sr_first >= 1, "an L2SR scene first in some month exercises the missing-thermal path"
