"""Generator of the twin's ``sentinel-2-l2a`` catalogue: PC-shaped items, COGs, metadata, manifest.

Collection: the real PC collection document (``fixtures/stac-extracted/sentinel-2-l2a.collection.json``),
unchanged. Items: one per (datatake, MGRS granule) over the granules that touch the sample tiles (see
:mod:`~olmoearth_twin.catalog.groups`, :mod:`~olmoearth_twin.catalog.schedule`,
:mod:`~olmoearth_twin.catalog.scene`, :mod:`~olmoearth_twin.catalog.bands`). An item's geometry is the
full granule footprint (minus the no-data side of a swath edge); its COGs cover a crop around the
sample tiles, and the assets' ``proj:*`` fields describe that crop.

``manifest.json``::

    {"generator": "olmoearth-twin/sentinel-2-l2a", "generator_version": str, "seed": int,
     "collection": "sentinel-2-l2a", "storage": {"account": str, "container": str},
     "samples": [{"tile_id", "centre", "periods": [{"start", "end", "items": [ids by (cloud cover, id)]}]}],
     "items": [{"id", "datetime", "platform", "mgrs_tile", "epsg", "relative_orbit", "eo:cloud_cover",
                "s2:processing_baseline", "boa_add_offset": 0 | 1000, "tiles": [sample tile ids whose
                polygon_lonlat() intersects the item geometry], "cog_bounds": [xmin, ymin, xmax, ymax],
                "valid_polygon_utm": WKT, "swath_edge": null | {"point": [x, y], "normal": [nx, ny]},
                "tile_stats": {tile_id: {"valid_fraction", "cloud_fraction"}}}]}

A pixel of an item's COG is nodata (0) iff its centre lies outside ``valid_polygon_utm`` (equivalently,
with a ``swath_edge``, ``(x − point)·normal < 0``). ``tile_stats`` are SCL fractions (20 m) over the
tile's part inside the COG: valid = SCL ≠ 0, cloud = SCL ∈ {8, 9, 10} among all tile pixels.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from olmoearth_data.periods import monthly_periods
from olmoearth_data.samples import Sample
from olmoearth_twin import fixtures as fx
from olmoearth_twin.catalog.group_writer import GroupWriter
from olmoearth_twin.catalog.groups import group_samples
from olmoearth_twin.catalog.queryables import queryables_for
from olmoearth_twin.catalog.samples import sample_key
from olmoearth_twin.catalog.scene import Sources
from olmoearth_twin.catalog.store import Catalog, cached_build, write_ndjson

#: Bump when the output for the same inputs changes (it is part of the cache key).
GENERATOR_VERSION = "1"
COLLECTION_ID = "sentinel-2-l2a"
PC_STAC_ROOT = "https://planetarycomputer.microsoft.com/api/stac/v1"


def generate_sentinel2(
    *,
    samples: Sequence[Sample],
    seed: int,
    cache_dir: Path,
    fixtures_dir: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> Catalog:
    """Generate (or reuse from ``cache_dir``) the sentinel-2-l2a catalogue for ``samples``.

    Args:
        samples: (tile id, centre date) rows; tiles must be in WGS 84 UTM zones.
        seed: seed of every random choice (numpy ``default_rng``); same inputs → same bytes.
        cache_dir: folder of cached catalogues; the result is ``<cache_dir>/sentinel-2-l2a-<hash>``.
        fixtures_dir: folder holding the fixtures (default: the packaged ones,
            :func:`~olmoearth_twin.fixtures.fixtures_root`).
        log: progress callback (one line per granule group).
    """
    folder = Path(fixtures_dir) if fixtures_dir else fx.fixtures_root()
    used = [
        fx.S2_COLLECTION,
        fx.S2_ITEM,
        *(f"{fx.S2_PIXELS}/{n}" for n in ("B04.tif", "B08.tif", "B11.tif", "SCL.tif")),
    ]
    inputs = {
        "generator": f"olmoearth-twin/{COLLECTION_ID}",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "samples": [sample_key(s) for s in samples],
        "code": _code_hash(),
        "fixtures": {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()[:16] for name in used},
    }
    return cached_build(
        cache_dir=cache_dir,
        name=COLLECTION_ID,
        inputs=inputs,
        build=lambda out: _build(
            out=out, samples=tuple(samples), seed=int(seed), fixtures=folder, log=log or (lambda _: None)
        ),
    )


def _code_hash() -> str:
    # Part of the cache key, so editing the generator never serves a stale catalogue.
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _build(
    *, out: Path, samples: tuple[Sample, ...], seed: int, fixtures: Path, log: Callable[[str], None]
) -> None:
    collection = json.loads((fixtures / fx.S2_COLLECTION).read_text())
    template = json.loads((fixtures / fx.S2_ITEM).read_text())["features"][0]
    account, container = collection["msft:storage_account"], collection["msft:container"]
    sources = Sources.load(folder=fixtures / fx.S2_PIXELS)
    items: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for group in group_samples(samples=samples):
        rng = group.rng(seed=seed)
        writer = GroupWriter(
            group=group,
            rng=rng,
            sources=sources,
            template=template,
            out=out / "blobs" / account / container,
            blob_base=f"https://{account}.blob.core.windows.net/{container}",
        )
        group_items, group_entries = writer.run()
        items += group_items
        entries += group_entries
        log(f"{group.key}: {len(group_items)} items for {len(group.samples)} sample(s)")
    order = sorted(range(len(items)), key=lambda i: (items[i]["properties"]["datetime"], items[i]["id"]))
    items, entries = [items[i] for i in order], [entries[i] for i in order]
    write_ndjson(path=out / "stac" / "collections.ndjson", records=[collection])
    write_ndjson(path=out / "stac" / "items.ndjson", records=items)
    queryables = queryables_for(collection_id=COLLECTION_ID, item=template, stac_root=PC_STAC_ROOT)
    (out / "stac" / "queryables").mkdir(parents=True, exist_ok=True)
    (out / "stac" / "queryables" / f"{COLLECTION_ID}.json").write_text(json.dumps(queryables, indent=1))
    manifest = {
        "generator": f"olmoearth-twin/{COLLECTION_ID}",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "collection": COLLECTION_ID,
        "storage": {"account": account, "container": container},
        "samples": _sample_periods(samples=samples, entries=entries),
        "items": entries,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))


def _sample_periods(*, samples: tuple[Sample, ...], entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for sample in samples:
        periods = []
        for period in monthly_periods(centre=sample.centre):
            lo, hi = f"{period.start.isoformat()}T00:00:00Z", f"{period.end.isoformat()}T00:00:00Z"
            hits = [e for e in entries if sample.tile.id in e["tiles"] and lo <= e["datetime"] < hi]
            hits.sort(key=lambda e: (e["eo:cloud_cover"], e["id"]))
            periods.append(
                {
                    "start": period.start.isoformat(),
                    "end": period.end.isoformat(),
                    "items": [e["id"] for e in hits],
                }
            )
        out.append({**sample_key(sample), "periods": periods})
    return out
