"""Two samples of one UTM zone whose 12-month windows overlap share the real scenes and tiles.

PC ids are per scene (Landsat path/row + day) or per grid tile (WorldCover 3°, NASADEM / Cop-DEM 1°), so
the two samples must get one item per scene whose COGs cover both tiles — not one item per sample
with the same id (pgstac refused such a catalogue: "ON CONFLICT … cannot affect row a second time").
The tiles lie in two neighbouring 40.96 km date cells, 5 km apart (so one COG spans both, nodata in
between), in Provence, far from every other test catalogue (loading into the session twin changes no
other test's searches); the centres are 30 days apart, so the windows share 330 days.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import planetary_computer
import pystac_client
import pytest
import rasterio
from rasterio.windows import from_bounds
from shapely.geometry import mapping

from olmoearth_data.grid import Tile
from olmoearth_data.periods import span
from olmoearth_data.samples import Sample
from olmoearth_twin import Catalog, Twin
from olmoearth_twin.catalog.collections import generate_collections
from olmoearth_twin.catalog.degree_layers import worldcover_items
from olmoearth_twin.catalog.landsat import generate_landsat_scene, group_scenes
from olmoearth_twin.catalog.regions import group_regions
from olmoearth_twin.testing import TEST_SEED

SAMPLES = (
    Sample(Tile.from_id("EPSG:32631_238_-1903"), dt.date(2022, 1, 15)),
    Sample(Tile.from_id("EPSG:32631_241_-1902"), dt.date(2022, 2, 14)),
)
#: Asset read over the tiles, and the nodata that must not fill them (None: not checked — Cop-DEM has
#: no nodata; the WorldCover fixture tile is 87 % ocean, nodata 0, so its windows may hold only that).
READ = {
    "landsat-c2-l2": ("red", 0),
    "esa-worldcover": ("map", None),
    "nasadem": ("elevation", -32768),
    "cop-dem-glo-30": ("data", None),
}


@pytest.fixture(scope="module")
def overlap_catalog(twin: Twin, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    catalog = generate_collections(
        samples=SAMPLES, seed=TEST_SEED, cache_dir=tmp_path_factory.mktemp("twin-overlap")
    )
    twin.load_catalog(catalog)  # raised the ON CONFLICT error before scenes were shared
    return catalog


def _overlap() -> str:
    """The days both samples' windows hold, as a STAC datetime interval."""
    spans = [span(centre=s.centre) for s in SAMPLES]
    start, end = max(p.start for p in spans), min(p.end for p in spans)
    assert start < end
    return f"{start.isoformat()}T00:00:00Z/{(end - dt.timedelta(days=1)).isoformat()}T23:59:59Z"


def _search(client: pystac_client.Client, collection: str, sample: Sample, **kw: Any) -> list[dict[str, Any]]:
    geom = mapping(sample.tile.polygon_lonlat())
    return list(client.search(collections=[collection], intersects=geom, **kw).items_as_dicts())


def _read_tile(twin: Twin, item: dict[str, Any], asset: str, sample: Sample) -> np.ndarray:
    """The asset's pixels over the sample tile, served by the twin (``[H, W]``; must lie inside the COG)."""
    href = twin.rewrite_href(planetary_computer.sign(item["assets"][asset]["href"]))
    with rasterio.open(href) as ds:
        tile = sample.tile
        if ds.crs.to_epsg() != tile.epsg:  # lon/lat products: the tile's lon/lat bounds
            bounds = sample.tile.polygon_lonlat().bounds
        else:
            bounds = tile.bounds
        window = from_bounds(*bounds, transform=ds.transform)
        assert window.col_off >= 0 and window.row_off >= 0, (item["id"], sample.tile.id, window)
        assert window.col_off + window.width <= ds.width + 1e-6, (item["id"], sample.tile.id)
        assert window.row_off + window.height <= ds.height + 1e-6, (item["id"], sample.tile.id)
        return ds.read(1, window=window.round_offsets().round_lengths())


@pytest.mark.twin
def test_every_id_appears_once(overlap_catalog: Catalog) -> None:
    counts = Counter((i["collection"], i["id"]) for i in overlap_catalog.items())
    assert [key for key, n in counts.items() if n > 1] == []
    entries = overlap_catalog.manifest()["collections"]["landsat-c2-l2"]["items"]
    shared = [e for e in entries if set(e["tiles"]) == {s.tile.id for s in SAMPLES}]
    # One path/row, L8 and L9 every 8 days: ~41 passes in the 330 days both windows hold.
    assert 38 <= len(shared) <= 43, len(shared)


@pytest.mark.twin
def test_searches_return_each_scene_once_covering_both_tiles(twin: Twin, overlap_catalog: Catalog) -> None:
    client = pystac_client.Client.open(twin.stac_url)
    for collection, (asset, nodata) in READ.items():
        kw = {"datetime": _overlap()} if collection == "landsat-c2-l2" else {}
        found = [_search(client, collection, s, **kw) for s in SAMPLES]
        ids = [[i["id"] for i in items] for items in found]
        for got in ids:
            assert got and len(got) == len(set(got)), (collection, got)
        # Both tiles see the very same scenes (one item each), and every one covers both tiles.
        assert sorted(ids[0]) == sorted(ids[1]), collection
        valid = {s.tile.id: [] for s in SAMPLES}
        for item in found[0]:
            for sample in SAMPLES:
                pixels = _read_tile(twin, item, asset, sample)
                if nodata is not None:
                    valid[sample.tile.id].append(float((pixels != nodata).mean()))
        for tile_id, fractions in valid.items():
            # Landsat windows catch the fixture scene's fill border (30 % of it) now and then;
            # NASADEM is data everywhere.
            least = 0.5 if collection == "landsat-c2-l2" else 0.999
            assert not fractions or np.mean(fractions) > least, (collection, tile_id, fractions)
    # The S1 items (acquired per sample) are listed once each too.
    for sample in SAMPLES:
        got = [i["id"] for i in _search(client, "sentinel-1-rtc", sample)]
        assert got and len(got) == len(set(got))


@pytest.mark.twin
def test_manifest_lists_shared_scenes_for_both_samples(overlap_catalog: Catalog) -> None:
    rows = {r["tile_id"]: r for r in overlap_catalog.manifest()["samples"]}
    per_sample = [{i for p in rows[s.tile.id]["periods"] for i in p["landsat-c2-l2"]} for s in SAMPLES]
    entries = overlap_catalog.manifest()["collections"]["landsat-c2-l2"]["items"]
    shared = {e["id"] for e in entries if len(e["tiles"]) == 2}
    assert shared <= per_sample[0] & per_sample[1]
    for cid in ("esa-worldcover", "nasadem", "cop-dem-glo-30"):
        assert rows[SAMPLES[0].tile.id]["static"][cid] == rows[SAMPLES[1].tile.id]["static"][cid] != []


#: One path/row (114/030) and one WorldCover tile (N42E003), 160 km apart, windows overlapping.
FAR_APART = (
    Sample(Tile.from_id("EPSG:32631_223_-1862"), dt.date(2022, 1, 15)),
    Sample(Tile.from_id("EPSG:32631_269_-1916"), dt.date(2022, 2, 14)),
)


def test_far_apart_samples_of_one_scene_are_refused_with_the_fix(fixtures_dir: Path, tmp_path: Path) -> None:
    (scene,) = group_scenes(samples=FAR_APART)
    template = json.loads((fixtures_dir / "stac-extracted/landsat-c2-l2.items-limit1.json").read_text())
    with pytest.raises(ValueError, match=r"Landsat scene 114030 .* span 4712x4029 px .* keep samples"):
        generate_landsat_scene(
            scene=scene,
            template=template["features"][0],
            fixtures=fixtures_dir,
            blobs=tmp_path,
            rng=np.random.default_rng(0),
        )
    template = json.loads((fixtures_dir / "stac-extracted/esa-worldcover.items-limit1.json").read_text())
    with pytest.raises(ValueError, match=r"WorldCover tile N42E003 span .* keep samples of one 3° tile"):
        worldcover_items(
            regions=group_regions(samples=FAR_APART),
            template=template["features"][0],
            fixtures=fixtures_dir,
            blobs=tmp_path,
            rng=np.random.default_rng(0),
        )
