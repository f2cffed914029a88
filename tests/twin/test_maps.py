"""The maps PC does not host: tile indexes list the tiles, GDAL reads them over HTTP without a SAS."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import requests
from rasterio.warp import transform_bounds
from rasterio.windows import from_bounds
from shapely.geometry import shape
from shapely.ops import unary_union

from olmoearth_twin import Catalog, Twin
from olmoearth_twin.catalog.worldcereal import PRODUCTS
from olmoearth_twin.testing import COLLECTIONS_TEST_SAMPLES

pytestmark = pytest.mark.twin


def _index(twin: Twin, name: str) -> tuple[dict, str]:
    url = twin.tile_index_url(name)
    response = requests.get(url, timeout=10)  # anonymous, like the real bucket / Zenodo
    assert response.status_code == 200
    return response.json(), url.rsplit("/", 1)[0].removesuffix("/v1/alsgedi_global_v6_float").removesuffix(
        "/2021"
    )


def test_unknown_index_name(twin: Twin, twin_maps: Catalog) -> None:
    with pytest.raises(KeyError):
        twin.tile_index_url("no-such-map")


def test_canopy_height_tiles(twin: Twin, twin_maps: Catalog) -> None:
    index, base = _index(twin, "wri-canopy-height")
    features = index["features"]
    assert features and all(len(f["properties"]["tile"]) == 15 for f in features)
    cover = unary_union([shape(f["geometry"]) for f in features])
    for sample in COLLECTIONS_TEST_SAMPLES:
        assert cover.contains(sample.tile.polygon_lonlat())
    first = features[0]
    with rasterio.open(f"{base}/{first['properties']['href']}") as ds:
        assert ds.crs.to_epsg() == 3857 and ds.dtypes[0] == "uint8" and ds.nodata == 255
        assert abs(ds.res[0] - 1.1943) < 1e-3
        data = ds.read(1)
    assert data.max() <= 255 and ((data > 0) & (data < 255)).any()
    assert tuple(np.round(shape(first["geometry"]).bounds, 5)) == tuple(
        np.round(transform_bounds(3857, 4326, *ds.bounds), 5)
    )


def test_pc_containers_still_need_a_sas(twin: Twin, twin_maps: Catalog, twin_catalog: Catalog) -> None:
    href = twin_catalog.items()[0]["assets"]["B04"]["href"]
    assert requests.head(twin.rewrite_href(href), timeout=10).status_code == 403


def test_worldcereal_zones_overlap_with_different_valid_areas(twin: Twin, twin_maps: Catalog) -> None:
    index, base = _index(twin, "worldcereal-2021")
    zones = index["features"]
    assert all(sorted(z["properties"]["hrefs"]) == sorted(PRODUCTS) for z in zones)
    covering = {}
    for sample in COLLECTIONS_TEST_SAMPLES:
        tile = sample.tile.polygon_lonlat()
        covering[sample.tile.id] = [z for z in zones if shape(z["geometry"]).contains(tile)]
        assert covering[sample.tile.id], sample.tile.id
    sample = COLLECTIONS_TEST_SAMPLES[0]
    a, b = covering[sample.tile.id][:2]
    bounds = sample.tile.polygon_lonlat().bounds
    valid = []
    for zone in (a, b):
        with rasterio.open(f"{base}/{zone['properties']['hrefs']['tc-annual_temporarycrops']}") as ds:
            assert ds.crs.to_epsg() == 4326 and ds.dtypes[0] == "uint8" and ds.nodata == 255
            data = ds.read(1, window=from_bounds(*bounds, transform=ds.transform).round_offsets())
            assert set(np.unique(data)) <= {0, 100, 255}
            valid.append(data != 255)
        with rasterio.open(f"{base}/{zone['properties']['hrefs']['tc-maize-main_maize']}") as ds:
            assert set(np.unique(ds.read(1))) <= {0, 100, 254, 255}
    shape_ = min(v.shape[0] for v in valid), min(v.shape[1] for v in valid)
    va, vb = (v[: shape_[0], : shape_[1]] for v in valid)
    assert (va != vb).mean() > 0.1  # the valid areas differ ...
    assert (va & vb).any()  # ... overlap ...
    assert (va | vb).all()  # ... and only together cover the tile
    assert not va.all() and not vb.all()
