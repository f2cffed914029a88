"""Generator of the maps PC does not host: WRI/Meta canopy height and ESA WorldCereal 2021.

One catalogue folder like the STAC ones (see :mod:`~olmoearth_twin.catalog.store`) but with no STAC
records: only files under ``blobs/<account>/<container>/`` that the twin's blob server serves from
*public* containers (anonymous reads, as the real S3 bucket and Zenodo are), and a manifest::

    {"generator": "olmoearth-twin/maps", "seed",
     "tile_indexes": {<name>: {"account", "container", "path", "features": n}}}

Names: ``wri-canopy-height`` (:mod:`~olmoearth_twin.catalog.canopy_height`) and ``worldcereal-2021``
(:mod:`~olmoearth_twin.catalog.worldcereal`). A running twin gives an index's URL with
``twin.tile_index_url(name)``; hrefs inside are relative to that URL's container,
``<assets_url>/<account>/<container>/``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from olmoearth_data.samples import Sample
from olmoearth_twin.catalog import canopy_height, worldcereal
from olmoearth_twin.catalog.regions import group_regions
from olmoearth_twin.catalog.samples import sample_key
from olmoearth_twin.catalog.store import Catalog, cached_build, write_ndjson

CANOPY_HEIGHT = "wri-canopy-height"
WORLDCEREAL = "worldcereal-2021"


def generate_maps(*, samples: Sequence[Sample], seed: int, cache_dir: Path) -> Catalog:
    """Generate (or reuse from ``cache_dir``) the canopy-height and WorldCereal files for ``samples``;
    the result is ``<cache_dir>/maps-<hash>``. Load it with ``twin.load_catalog``."""
    code = hashlib.sha256()
    for module in (canopy_height, worldcereal):
        code.update(Path(str(module.__file__)).read_bytes())
    code.update(Path(__file__).read_bytes())
    inputs = {
        "generator": "olmoearth-twin/maps",
        "seed": int(seed),
        "samples": [sample_key(s) for s in samples],
        "code": code.hexdigest()[:16],
    }

    def build(out: Path) -> None:
        blobs = out / "blobs"
        chm = canopy_height.canopy_tiles(
            samples=tuple(samples),
            blobs=blobs / canopy_height.ACCOUNT / canopy_height.CONTAINER,
            seed=int(seed),
        )
        wc = worldcereal.worldcereal_zones(
            regions=group_regions(samples=tuple(samples)),
            blobs=blobs / worldcereal.ACCOUNT / worldcereal.CONTAINER,
            seed=int(seed),
        )
        write_ndjson(path=out / "stac" / "collections.ndjson", records=[])
        write_ndjson(path=out / "stac" / "items.ndjson", records=[])
        (out / "stac" / "queryables").mkdir(parents=True, exist_ok=True)
        indexes = {
            CANOPY_HEIGHT: (canopy_height.ACCOUNT, canopy_height.CONTAINER, canopy_height.INDEX_PATH, chm),
            WORLDCEREAL: (worldcereal.ACCOUNT, worldcereal.CONTAINER, worldcereal.INDEX_PATH, wc),
        }
        manifest = {
            "generator": "olmoearth-twin/maps",
            "seed": int(seed),
            "tile_indexes": {
                name: {"account": a, "container": c, "path": p, "features": len(doc["features"])}
                for name, (a, c, p, doc) in indexes.items()
            },
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1))

    return cached_build(cache_dir=cache_dir, name="maps", inputs=inputs, build=build)
