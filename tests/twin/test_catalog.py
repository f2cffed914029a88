"""The generated Sentinel-2 catalogue: pixels agree with metadata, the manifest and the cache."""

from __future__ import annotations

import hashlib
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from olmoearth_twin import SMALL_SAMPLES, Catalog, generate_sentinel2

pytestmark = pytest.mark.twin
PREFIX = "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/"
CLOUD = (8, 9, 10)


def _read(catalog: Catalog, item: dict[str, Any], key: str) -> np.ndarray:
    path = catalog.blobs_dir / "sentinel2l2a01/sentinel2-l2" / item["assets"][key]["href"][len(PREFIX) :]
    with rasterio.open(path) as ds:
        return ds.read(1) if ds.count == 1 else ds.read()


@pytest.fixture(scope="module")
def items(twin_catalog: Catalog) -> list[dict[str, Any]]:
    return twin_catalog.items()


def test_cloud_cover_is_the_cloudy_share_of_valid_scl_pixels(twin_catalog: Catalog, items) -> None:
    for item in items:
        scl = _read(twin_catalog, item, "SCL")
        valid = scl != 0
        expected = 100.0 * np.isin(scl, CLOUD).sum() / valid.sum()
        assert item["properties"]["eo:cloud_cover"] == pytest.approx(expected, abs=1e-6), item["id"]
    covers = sorted(i["properties"]["eo:cloud_cover"] for i in items)
    assert covers[0] < 15 and covers[-1] > 50, "a spread of clear and cloudy scenes"


def test_clouds_are_bright_where_scl_says_cloud(twin_catalog: Catalog, items) -> None:
    item = max(items, key=lambda i: i["properties"]["eo:cloud_cover"])
    scl = np.repeat(np.repeat(_read(twin_catalog, item, "SCL"), 2, axis=0), 2, axis=1)
    blue = _read(twin_catalog, item, "B02").astype(float)
    assert blue[scl == 9].mean() > 2 * blue[scl == 5].mean()
    assert blue[np.isin(scl, (8, 9))].min() > 3000


def test_both_processing_baselines_and_the_offset_in_xml_and_pixels(twin_catalog: Catalog, items) -> None:
    baselines = {i["properties"]["s2:processing_baseline"] for i in items}
    assert baselines & {"02.12", "03.01"} and baselines & {"04.00", "05.10", "05.11"}
    dark_checked: set[bool] = set()
    for item in items:
        offset = item["properties"]["s2:processing_baseline"] >= "04.00"
        path = (
            twin_catalog.blobs_dir
            / "sentinel2l2a01/sentinel2-l2"
            / item["assets"]["product-metadata"]["href"][len(PREFIX) :]
        )
        root = ET.parse(path).getroot()
        assert root.find(".//PROCESSING_BASELINE").text == item["properties"]["s2:processing_baseline"]
        values = {e.get("band_id"): e.text for e in root.iter("BOA_ADD_OFFSET")}
        assert values == ({str(b): "-1000" for b in range(13)} if offset else {}), item["id"]
        scl, nir = _read(twin_catalog, item, "SCL"), _read(twin_catalog, item, "B08")
        water = np.repeat(np.repeat(scl == 6, 2, axis=0), 2, axis=1) & (nir > 0)
        land = np.repeat(np.repeat(scl == 5, 2, axis=0), 2, axis=1)
        if item["properties"]["eo:cloud_cover"] < 10 and water.sum() > 20:
            # Dark valid water: NIR reflectance DN 1..50 (stored +1000 with the offset), never 0.
            dark = nir[water].astype(int) - (1000 if offset else 0)
            assert ((dark >= 1) & (dark <= 50)).sum() > 20 and dark.min() >= 1, item["id"]
            dark_checked.add(offset)
        if offset:  # land reflectance is positive, so every valid land DN carries the +1000
            assert (nir[land & (nir > 0)] > 1000).all(), item["id"]
    assert dark_checked == {False, True}, "dark water checked in clear scenes of both baselines"
    clear = [
        i
        for i in items
        if i["properties"]["s2:processing_baseline"] >= "04.00" and i["properties"]["eo:cloud_cover"] < 20
    ]
    swir = np.concatenate([_read(twin_catalog, i, "B12").ravel() for i in clear])
    assert ((swir > 0) & (swir < 1000)).any(), "slightly negative SWIR reflectance over water exists"


def test_swath_edge_nodata_matches_the_manifest(twin_catalog: Catalog, manifest, items) -> None:
    by_id = {i["id"]: i for i in items}
    partial = [e for e in manifest["items"] if e["swath_edge"] is not None]
    assert partial, "some scenes must have a partial-swath edge"
    for entry in partial[:3]:
        item = by_id[entry["id"]]
        xmin, ymin, xmax, ymax = entry["cog_bounds"]
        for key, res in (("B04", 10), ("B11", 20), ("B01", 60)):
            x = xmin + (np.arange(round((xmax - xmin) / res)) + 0.5) * res
            y = ymax - (np.arange(round((ymax - ymin) / res)) + 0.5) * res
            (px, py), (nx, ny) = entry["swath_edge"]["point"], entry["swath_edge"]["normal"]
            expected = (x[None, :] - px) * nx + (y[:, None] - py) * ny >= 0
            data = _read(twin_catalog, item, key)
            np.testing.assert_array_equal(data != 0, expected)
        assert 0 < expected.mean() < 1, "the edge crosses the COG"


def test_manifest_describes_every_item_and_period(manifest, items) -> None:
    assert [e["id"] for e in manifest["items"]] == [i["id"] for i in items]
    for sample in manifest["samples"]:
        counts = [len(p["items"]) for p in sample["periods"]]
        assert len(counts) == 12 and 0 in counts and max(counts) >= 2
        cloud = {e["id"]: e["eo:cloud_cover"] for e in manifest["items"]}
        for period in sample["periods"]:
            covers = [cloud[i] for i in period["items"]]
            assert covers == sorted(covers) and len(set(covers)) == len(covers)


def _digest(catalog: Catalog) -> str:
    h = hashlib.sha256(catalog.items_path.read_bytes())
    first = catalog.items()[0]["assets"]["B04"]["href"][len(PREFIX) :]
    h.update((catalog.blobs_dir / "sentinel2l2a01/sentinel2-l2" / first).read_bytes())
    return h.hexdigest()


def test_cache_reuse_and_determinism(twin_catalog: Catalog, fixtures_dir: Path, tmp_path: Path) -> None:
    t0 = time.perf_counter()
    again = generate_sentinel2(
        samples=SMALL_SAMPLES, seed=0, cache_dir=twin_catalog.root.parent, fixtures_dir=fixtures_dir
    )
    assert again.root == twin_catalog.root and time.perf_counter() - t0 < 1.0
    fresh = generate_sentinel2(
        samples=SMALL_SAMPLES, seed=0, cache_dir=tmp_path / "a", fixtures_dir=fixtures_dir
    )
    assert fresh.root.name == twin_catalog.root.name and _digest(fresh) == _digest(twin_catalog)
    other = generate_sentinel2(
        samples=SMALL_SAMPLES[:1], seed=1, cache_dir=tmp_path / "b", fixtures_dir=fixtures_dir
    )
    assert other.root.name != twin_catalog.root.name and _digest(other) != _digest(twin_catalog)
