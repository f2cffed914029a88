"""The generator's deliberately bad assets are really bad, each in the way the manifest says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.errors import RasterioError

from olmoearth_twin import Catalog, parse_blob_url
from olmoearth_twin.catalog.collections import BAD_ASSETS

pytestmark = pytest.mark.twin


def _bad(catalog: Catalog, kind: str) -> tuple[dict[str, Any], list[Path]]:
    """The item a bad-asset kind spoils and the local files of its spoiled assets."""
    (where,) = catalog.manifest()["bad_asset_items"][kind]
    item = next(i for i in catalog.items() if i["id"] == where["item"])
    paths = []
    for key in where["assets"]:
        ref = parse_blob_url(url=item["assets"][key]["href"])
        assert ref is not None
        paths.append(catalog.blobs_dir / ref.account / ref.container / ref.path)
    return item, paths


def test_manifest_lists_every_kind(twin_bad_collections: Catalog) -> None:
    manifest = twin_bad_collections.manifest()
    assert manifest["bad_assets"] == sorted(BAD_ASSETS)
    assert sorted(manifest["bad_asset_items"]) == sorted(BAD_ASSETS)


def test_truncated_cog_fails_to_read(twin_bad_collections: Catalog) -> None:
    _, (path,) = _bad(twin_bad_collections, "truncated")
    with pytest.raises(RasterioError), rasterio.open(path) as ds:
        ds.read()


def test_all_nodata_scene(twin_bad_collections: Catalog) -> None:
    _, paths = _bad(twin_bad_collections, "all_nodata")
    for path in paths:
        with rasterio.open(path) as ds:
            data = ds.read(1)
            assert ds.nodata is not None and np.all(data == ds.nodata)


def test_nan_in_s1_float_data(twin_bad_collections: Catalog) -> None:
    _, (path,) = _bad(twin_bad_collections, "nan")
    with rasterio.open(path) as ds:
        data = ds.read(1)
    assert data.dtype == np.float32 and np.isnan(data).any() and np.isfinite(data).any()


def test_wrong_crs_disagrees_with_item(twin_bad_collections: Catalog) -> None:
    item, (path,) = _bad(twin_bad_collections, "wrong_crs")
    with rasterio.open(path) as ds:
        assert ds.crs.to_epsg() != item["properties"]["proj:epsg"]
    # The other assets of that item agree (only the one asset is spoiled).
    ref = parse_blob_url(url=item["assets"]["green"]["href"])
    assert ref is not None
    with rasterio.open(twin_bad_collections.blobs_dir / ref.account / ref.container / ref.path) as ds:
        assert ds.crs.to_epsg() == item["properties"]["proj:epsg"]


def test_good_catalogue_has_no_bad_assets(twin_collections: Catalog) -> None:
    assert twin_collections.manifest()["bad_asset_items"] == {}
