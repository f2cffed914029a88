"""Generator of the twin's other PC collections: S1 RTC, Landsat C2 L2, WorldCover, NASADEM, Cop-DEM, CDL.

One catalogue (see :mod:`~olmoearth_twin.catalog.store`) holding every collection's real document
(``fixtures/stac-extracted/<id>.collection.json``, unchanged), generated items, COGs, queryables and a
manifest. Each collection's module documents which pixels are real and how the rest is derived.

``manifest.json``::

    {"generator": "olmoearth-twin/collections", "generator_version", "seed", "bad_assets": [...],
     "bad_asset_items": {<kind>: [{"collection", "item", "assets": [asset keys]}]},
     "collections": {<id>: {"storage": {"account", "container"}, "items": [entries by module]}},
     "samples": [{"tile_id", "centre", "static": {<id>: [item ids whose geometry intersects the tile]},
                  "periods": [{"start", "end", "sentinel-1-rtc": [ids], "landsat-c2-l2": [ids]}]}]}

Period lists hold what a search of that collection with the pipeline's filters (sources.py), the tile's
lon/lat polygon and ``[start, end)`` returns, sorted by datetime then id (S1) or cloud cover then id
(Landsat). Static lists apply the pipeline filters too (WorldCover v2.0.0, CDL ``cropland``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import shape

from olmoearth_data.periods import monthly_periods
from olmoearth_data.samples import Sample
from olmoearth_twin import fixtures as fx
from olmoearth_twin.blob_urls import parse_blob_url
from olmoearth_twin.catalog.cdl import cdl_items
from olmoearth_twin.catalog.degree_layers import copdem_items, nasadem_items, worldcover_items
from olmoearth_twin.catalog.land_cover import group_land_cover
from olmoearth_twin.catalog.landsat import generate_landsat_scene, group_scenes
from olmoearth_twin.catalog.queryables import queryables_for
from olmoearth_twin.catalog.regions import group_regions
from olmoearth_twin.catalog.samples import sample_key
from olmoearth_twin.catalog.scene import Sources
from olmoearth_twin.catalog.sentinel1 import generate_s1_region
from olmoearth_twin.catalog.store import Catalog, cached_build, write_ndjson

GENERATOR_VERSION = "1"
PC_STAC_ROOT = "https://planetarycomputer.microsoft.com/api/stac/v1"
COLLECTIONS = ("sentinel-1-rtc", "landsat-c2-l2", "esa-worldcover", "nasadem", "cop-dem-glo-30", "usda-cdl")
#: Deliberately bad assets a generator can add (see :func:`generate_collections`).
BAD_ASSETS = ("nan", "all_nodata", "truncated", "wrong_crs")


def generate_collections(
    *,
    samples: Sequence[Sample],
    seed: int,
    cache_dir: Path,
    fixtures_dir: Path | None = None,
    bad_assets: Sequence[str] = (),
) -> Catalog:
    """Generate (or reuse from ``cache_dir``) the non-S2 catalogue for ``samples``.

    Args:
        samples: (tile id, centre date) rows in WGS 84 UTM zones.
        seed: seed of every random choice; same inputs → same bytes.
        cache_dir: cache folder; the result is ``<cache_dir>/collections-<hash>``.
        fixtures_dir: folder holding the fixtures (default: the packaged ones,
            :func:`~olmoearth_twin.fixtures.fixtures_root`).
        bad_assets: subset of :data:`BAD_ASSETS`, applied to the first region (Landsat: the first
            scene): ``nan`` (NaN block in the first S1 item's VV), ``all_nodata`` (second S1 item all
            −32768), ``truncated`` (third S1 item's VH COG cut to half its bytes), ``wrong_crs`` (the
            red COG of the Landsat item a search for the first sample's first month lists first,
            written in EPSG:4326 while the item says its UTM ``proj:epsg``). Listed in the manifest.
    """
    unknown = set(bad_assets) - set(BAD_ASSETS)
    if unknown:
        raise ValueError(f"unknown bad_assets {sorted(unknown)}; choose from {BAD_ASSETS}")
    folder = Path(fixtures_dir) if fixtures_dir else fx.fixtures_root()
    code = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        code.update(path.name.encode() + path.read_bytes())
    inputs = {
        "generator": "olmoearth-twin/collections",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "samples": [sample_key(s) for s in samples],
        "bad_assets": sorted(bad_assets),
        "code": code.hexdigest()[:16],
    }
    return cached_build(
        cache_dir=cache_dir,
        name="collections",
        inputs=inputs,
        build=lambda out: _build(
            out=out, samples=tuple(samples), seed=int(seed), fixtures=folder, bad=set(bad_assets)
        ),
    )


def _template(fixtures: Path, collection_id: str) -> dict[str, Any]:
    return json.loads((fixtures / f"stac-extracted/{collection_id}.items-limit1.json").read_text())[
        "features"
    ][0]


def _storage(template: dict[str, Any], asset: str) -> tuple[str, str]:
    ref = parse_blob_url(url=template["assets"][asset]["href"])
    assert ref is not None
    return ref.account, ref.container


def _absolute(items: list[dict[str, Any]], account: str, container: str) -> None:
    """Turn the generators' blob-relative hrefs (no scheme) into PC blob URLs."""
    for item in items:
        for asset in item["assets"].values():
            if "://" not in asset["href"]:
                asset["href"] = f"https://{account}.blob.core.windows.net/{container}/{asset['href']}"


def _build(*, out: Path, samples: tuple[Sample, ...], seed: int, fixtures: Path, bad: set[str]) -> None:
    regions = group_regions(samples=samples)
    items: list[dict[str, Any]] = []
    per: dict[str, dict[str, Any]] = {}
    templates = {c: _template(fixtures, c) for c in COLLECTIONS if c != "usda-cdl"}

    def blobs_for(collection_id: str, asset: str) -> tuple[Path, str, str]:
        account, container = _storage(templates[collection_id], asset)
        per[collection_id] = {"storage": {"account": account, "container": container}, "items": []}
        return out / "blobs" / account / container, account, container

    def rng(*parts: object) -> np.random.Generator:
        key = hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8]
        return np.random.default_rng([seed, int.from_bytes(key, "little")])

    s1_blobs, acc, con = blobs_for("sentinel-1-rtc", "vv")
    for i, region in enumerate(regions):
        got, entries = generate_s1_region(
            region=region,
            template=templates["sentinel-1-rtc"],
            fixtures=fixtures,
            blobs=s1_blobs,
            rng=rng("s1", region.key),
            bad=bad if i == 0 else set(),
        )
        _absolute(got, acc, con)
        items += got
        per["sentinel-1-rtc"]["items"] += entries
    ls_blobs, acc, con = blobs_for("landsat-c2-l2", "red")
    # Per scene (path/row), not per region: regions sharing a scene share its items (PC ids are per
    # scene and day, so per-region items would repeat ids where the regions' windows overlap).
    for i, scene in enumerate(group_scenes(samples=samples)):
        got, entries = generate_landsat_scene(
            scene=scene,
            template=templates["landsat-c2-l2"],
            fixtures=fixtures,
            blobs=ls_blobs,
            rng=rng("landsat", scene.key),
            wrong_crs="wrong_crs" in bad and i == 0,
        )
        _absolute(got, acc, con)
        items += got
        per["landsat-c2-l2"]["items"] += entries
    for cid, asset, fn in (
        (
            "esa-worldcover",
            "map",
            lambda b: worldcover_items(
                regions=regions,
                template=templates["esa-worldcover"],
                fixtures=fixtures,
                blobs=b,
                rng=rng("wc"),
                land_cover=group_land_cover(
                    samples=samples, seed=seed, sources=Sources.load(folder=fixtures / fx.S2_PIXELS)
                ),
            ),
        ),
        (
            "nasadem",
            "elevation",
            lambda b: nasadem_items(
                regions=regions, template=templates["nasadem"], fixtures=fixtures, blobs=b
            ),
        ),
        (
            "cop-dem-glo-30",
            "data",
            lambda b: copdem_items(
                regions=regions,
                template=templates["cop-dem-glo-30"],
                fixtures=fixtures,
                blobs=b,
                rng=rng("cop"),
            ),
        ),
    ):
        blobs, acc, con = blobs_for(cid, asset)
        got, entries = fn(blobs)
        _absolute(got, acc, con)
        items += got
        per[cid]["items"] += entries
    cdl_doc = json.loads((fixtures / "stac-extracted/usda-cdl.collection.json").read_text())
    acc, con = cdl_doc["msft:storage_account"], cdl_doc["msft:container"]
    got, entries = cdl_items(
        regions=regions,
        fixtures=fixtures,
        blobs=out / "blobs" / acc / con,
        blob_base=f"https://{acc}.blob.core.windows.net/{con}",
    )
    items += got
    per["usda-cdl"] = {"storage": {"account": acc, "container": con}, "items": entries, "years": [2008, 2021]}

    collections = [
        json.loads((fixtures / f"stac-extracted/{c}.collection.json").read_text()) for c in COLLECTIONS
    ]
    write_ndjson(path=out / "stac" / "collections.ndjson", records=collections)
    write_ndjson(path=out / "stac" / "items.ndjson", records=items)
    qdir = out / "stac" / "queryables"
    qdir.mkdir(parents=True, exist_ok=True)
    for cid in COLLECTIONS:
        if cid == "landsat-c2-l2":  # PC's own recorded document ...
            doc = json.loads((fixtures / "stac-extracted/landsat-c2-l2.queryables.json").read_text())
            # ... plus "type": "number" beside the eo $ref: pgstac does not follow $refs and would
            # compare/sort cloud cover as text (as for the derived S2 queryables).
            doc["properties"]["eo:cloud_cover"]["type"] = "number"
        else:
            example = templates[cid] if cid != "usda-cdl" else _cdl_example(fixtures=fixtures, items=items)
            doc = queryables_for(collection_id=cid, item=example, stac_root=PC_STAC_ROOT)
        (qdir / f"{cid}.json").write_text(json.dumps(doc, indent=1))
    manifest = {
        "generator": "olmoearth-twin/collections",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "bad_assets": sorted(bad),
        "bad_asset_items": _bad_locations(bad=bad, per=per),
        "collections": per,
        "samples": _expectations(samples=samples, items=items),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


# Which item/assets each bad-asset kind spoils (the first region's items come first in ``per``; None:
# the entry the generator marked ``"bad_asset": <kind>``); kept beside the generators' choices in
# sentinel1.py/landsat.py so tests need not re-derive them.
_BAD_WHERE: dict[str, tuple[str, int | None, list[str]]] = {
    "nan": ("sentinel-1-rtc", 0, ["vv"]),
    "all_nodata": ("sentinel-1-rtc", 1, ["vh", "vv"]),
    "truncated": ("sentinel-1-rtc", 2, ["vh"]),
    "wrong_crs": ("landsat-c2-l2", None, ["red"]),
}


def _cdl_example(*, fixtures: Path, items: list[dict[str, Any]]) -> dict[str, Any]:
    """A CDL item for the queryables: a generated one, else (no CONUS sample) the stactools fixture."""
    generated = next((i for i in items if i["collection"] == "usda-cdl"), None)
    if generated is not None:
        return generated
    path = sorted((fixtures / "usda-cdl-stactools").glob("cropland_*.json"))[0]
    return json.loads(path.read_text())


def _bad_locations(*, bad: set[str], per: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for kind in sorted(bad):
        collection, index, assets = _BAD_WHERE[kind]
        entries = per[collection]["items"]
        if index is None:
            index = next(i for i, e in enumerate(entries) if e.get("bad_asset") == kind)
        item_id = entries[index]["id"]
        out[kind] = [{"collection": collection, "item": item_id, "assets": assets}]
    return out


def _expectations(*, samples: tuple[Sample, ...], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    shapes = [(item, shape(item["geometry"])) for item in items]
    rows = []
    for sample in samples:
        tile = sample.tile.polygon_lonlat()
        hits = [item for item, geom in shapes if geom.intersects(tile)]

        def static(cid: str, hits: list[dict[str, Any]] = hits) -> list[str]:
            chosen = [i for i in hits if i["collection"] == cid]
            if cid == "esa-worldcover":
                chosen = [i for i in chosen if i["properties"]["esa_worldcover:product_version"] == "2.0.0"]
            if cid == "usda-cdl":
                chosen = [i for i in chosen if i["properties"]["usda_cdl:type"] == "cropland"]
            return sorted(i["id"] for i in chosen)

        periods = []
        for period in monthly_periods(centre=sample.centre):
            lo, hi = f"{period.start.isoformat()}T00:00:00Z", f"{period.end.isoformat()}T00:00:00Z"
            inside = [i for i in hits if lo <= (i["properties"]["datetime"] or "") < hi]
            s1 = sorted(
                (i for i in inside if i["collection"] == "sentinel-1-rtc"),
                key=lambda i: (i["properties"]["datetime"], i["id"]),
            )
            ls = sorted(
                (i for i in inside if i["collection"] == "landsat-c2-l2"),
                key=lambda i: (i["properties"]["eo:cloud_cover"], i["id"]),
            )
            periods.append(
                {
                    "start": period.start.isoformat(),
                    "end": period.end.isoformat(),
                    "sentinel-1-rtc": [i["id"] for i in s1],
                    "landsat-c2-l2": [i["id"] for i in ls],
                }
            )
        rows.append(
            {
                **sample_key(sample),
                "static": {c: static(c) for c in ("esa-worldcover", "nasadem", "cop-dem-glo-30", "usda-cdl")},
                "periods": periods,
            }
        )
    return rows
