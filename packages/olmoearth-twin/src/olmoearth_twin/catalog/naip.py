"""Generator of the twin's ``naip`` collection over the CONUS samples (West Oakland).

* **Collection**: PC's real document, from the recorded ``GET /collections`` in
  ``fixtures/stac-cassettes/TestAPI.test_links.yaml``.
* **Items**: one per (year, quarter quad touching a sample tile), cloned from the recorded Vermont items
  (``fixtures/stac-extracted/naip.search-post-paging-page*.json``) of the same era, because PC's schema
  changes with the year: 2016 (res code ``h``, no ``providers``), 2018 (processing-date suffix, no
  ``providers``), 2020 (= the 2021 items: ``providers``), 2022 (= the 2023 items: suffix,
  ``providers``, ``proj:centroid``). California's cycle: 2016, 2018, 2020, 2022, one summer date per
  7.5′ quad and year.
* **Footprints**: a quarter quad is a 3.75′ × 3.75′ cell (USGS quad id ``<lat><lon><nn>`` + ``nw|ne|sw|se``);
  the recorded items' ``proj:bbox`` is exactly the quarter quad's UTM (NAD83, EPSG:269<zone>) bounds
  + ``buffer_m`` = 300 m, snapped to the 0.6 m grid, and ``geometry`` its four corners in lon/lat.
  With the real 300 m no single West Oakland quarter quad contains the sample tile (its top misses by
  ~20 m); ``buffer_m=400`` makes one contain it, for tests of rules that need containing footprints.
* **Pixels**: 4-band (R, G, B, NIR) uint8 COGs over the whole footprint at :data:`COG_RES` m (a tiny
  stand-in for the 0.6 m image); smooth seeded fields. ``proj:shape``/``proj:transform`` describe that
  file; ``gsd`` stays PC's 0.6. Only the ``image`` asset has a file.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from affine import Affine
from pyproj import Transformer
from shapely.geometry import Polygon, box, shape

from olmoearth_data.samples import Sample
from olmoearth_twin import fixtures as fx
from olmoearth_twin.catalog.cogs import write_cog
from olmoearth_twin.catalog.queryables import queryables_for
from olmoearth_twin.catalog.regions import shp_transform
from olmoearth_twin.catalog.samples import sample_key
from olmoearth_twin.catalog.store import Catalog, cached_build, write_ndjson

PC_STAC_ROOT = "https://planetarycomputer.microsoft.com/api/stac/v1"

#: Pixel size of the generated NAIP COGs (metres; 32 × the real 0.6 m keeps a file ~100 KB).
COG_RES = 19.2
#: NAIP years generated (California's cycle within the pipeline's 2016-06-01 … 2024-06-01 window).
YEARS = (2016, 2018, 2020, 2022)
#: Template item (recorded id) per year: the recorded Vermont item of the same schema era.
_TEMPLATES = {
    2016: "vt_m_4307308_nw_18_h_20160805",
    2018: "vt_m_4307308_nw_18_060_20181019_20190225",
    2020: "vt_m_4307308_nw_18_060_20210920",
    2022: "vt_m_4307308_nw_18_030_20230622_20231113",
}
#: States the generator knows (lon/lat box); samples elsewhere get no NAIP items.
STATES = {"ca": (-124.5, 32.5, -114.1, 42.0)}


def naip_collection(*, fixtures: Path) -> dict[str, Any]:
    """PC's ``naip`` collection document from the recorded ``GET /collections`` response."""
    cassette = yaml.safe_load((fixtures / "stac-cassettes/TestAPI.test_links.yaml").read_text())
    for interaction in cassette["interactions"]:
        if interaction["request"]["uri"].endswith("/api/stac/v1/collections"):
            body = json.loads(interaction["response"]["body"]["string"])
            return next(c for c in body["collections"] if c["id"] == "naip")
    raise LookupError("no GET /collections interaction in the cassette")


def recorded_items(*, fixtures: Path) -> list[dict[str, Any]]:
    """The recorded PC NAIP items (Vermont, 2016-2023)."""
    items = []
    for page in ("page1", "page2"):
        doc = json.loads((fixtures / f"stac-extracted/naip.search-post-paging-{page}.json").read_text())
        items += doc["features"]
    return items


def _state(lon: float, lat: float) -> str | None:
    return next((s for s, (x0, y0, x1, y1) in STATES.items() if x0 <= lon <= x1 and y0 <= lat <= y1), None)


def quarter_quads(*, polygon: Polygon) -> list[tuple[str, str, Polygon]]:
    """The (7.5′ quad id, quadrant, lon/lat cell) of every quarter quad intersecting ``polygon``.

    A 1° cell (named by its SE corner: ``<lat><lon:03>`` of the north latitude floor and west longitude
    floor) holds 8 × 8 quads numbered 01-64 row by row from the north-west; each splits in four.
    """
    x0, y0, x1, y1 = polygon.bounds
    step = 0.0625
    out = []
    for i in range(math.floor(x0 / step), math.floor(x1 / step) + 1):
        for j in range(math.floor(y0 / step), math.floor(y1 / step) + 1):
            cell = box(i * step, j * step, (i + 1) * step, (j + 1) * step)
            if not cell.intersects(polygon) or cell.intersection(polygon).area == 0:
                continue
            lon, lat = i * step + step / 2, j * step + step / 2
            lat_deg, lon_deg = math.floor(lat), math.floor(-lon)  # west longitudes are named positive
            row = int((lat_deg + 1 - lat) / 0.125)
            col = int((lon - (-lon_deg - 1)) / 0.125)
            quad = f"{lat_deg:02d}{lon_deg:03d}{row * 8 + col + 1:02d}"
            north = (lat - lat_deg) % 0.125 > step
            east = (lon % 0.125) > step
            out.append((quad, ("n" if north else "s") + ("e" if east else "w"), cell))
    return out


def _field(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """A smooth field in [0, 1]: coarse noise upsampled (fields and streets at the COG's scale)."""
    coarse = rng.random((shape[0] // 8 + 2, shape[1] // 8 + 2))
    rows = np.linspace(0, coarse.shape[0] - 1.001, shape[0])
    cols = np.linspace(0, coarse.shape[1] - 1.001, shape[1])
    r0, c0 = rows.astype(int), cols.astype(int)
    fr, fc = (rows - r0)[:, None], (cols - c0)[None, :]
    top = coarse[r0][:, c0] * (1 - fc) + coarse[r0][:, c0 + 1] * fc
    bottom = coarse[r0 + 1][:, c0] * (1 - fc) + coarse[r0 + 1][:, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr


def _blob_href(href: str, *, t_stem: str, state: str, year: int, cell: str) -> str:
    """The template's blob href ``…/v002/<st>/<year>/<st>_<kind>_<year>/<cell>/<file>`` for another
    state, year and 1° cell (kind ``060cm``, ``fgdc``; the 0.3 m ``030cm`` of the 2023 template → 0.6 m)."""
    head, _, rest = href.partition("/v002/")
    _, _, folder, _, name = rest.split("/", 4)
    kind = folder.split("_")[1].replace("030cm", "060cm")
    return f"{head}/v002/{state}/{year}/{state}_{kind}_{year}/{cell}/{name}"


def naip_items(
    *,
    samples: tuple[Sample, ...],
    fixtures: Path,
    blobs: Path,
    rng: np.random.Generator,
    buffer_m: float,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Items (PC hrefs) and manifest entries for the quarter quads touching the CONUS ``samples``;
    COGs are written under ``blobs`` (the ``naipeuwest/naip`` container folder)."""
    templates = {i["id"]: i for i in recorded_items(fixtures=fixtures)}
    seen: dict[tuple[str, str], tuple[str, Polygon, str]] = {}
    for sample in samples:
        tile = sample.tile.polygon_lonlat()
        state = _state(tile.centroid.x, tile.centroid.y)
        if state is None:
            continue
        for quad, quadrant, cell in quarter_quads(polygon=tile):
            seen.setdefault((quad, quadrant), (state, cell, sample.tile.id))
    items, entries = [], []
    dates: dict[tuple[str, int], dt.date] = {}
    for (quad, quadrant), (state, cell, _) in sorted(seen.items()):
        zone = int((cell.centroid.x + 180) // 6) + 1
        epsg = 26900 + zone
        to_utm = Transformer.from_crs(4326, epsg, always_xy=True).transform
        to_ll = Transformer.from_crs(epsg, 4326, always_xy=True).transform
        ux0, uy0, ux1, uy1 = shp_transform(to_utm, cell.segmentize(0.001)).bounds
        x0, y0 = math.floor((ux0 - buffer_m) / 0.6) * 0.6, math.floor((uy0 - buffer_m) / 0.6) * 0.6
        x1, y1 = math.ceil((ux1 + buffer_m) / 0.6) * 0.6, math.ceil((uy1 + buffer_m) / 0.6) * 0.6
        corners = [(x1, y0), (x1, y1), (x0, y1), (x0, y0), (x1, y0)]  # PC's order: SE, NE, NW, SW
        ring = [[round(c, 6) for c in to_ll(x, y)] for x, y in corners]
        lons, lats = [p[0] for p in ring], [p[1] for p in ring]
        width, height = math.ceil((x1 - x0) / COG_RES), math.ceil((y1 - y0) / COG_RES)
        for year in YEARS:
            # One flight date per 7.5' quad and year: its four quarters share it, as in the recordings.
            day = dates.setdefault(
                (quad, year), dt.date(year, 6, 1) + dt.timedelta(days=int(rng.integers(0, 92)))
            )
            template = templates[_TEMPLATES[year]]
            res = "h" if year == 2016 else "060"
            stem = f"m_{quad}_{quadrant}_{zone:02d}_{res}_{day:%Y%m%d}"
            suffix = ""
            if year in (2018, 2022):  # the processing date, shared by a state's whole delivery
                suffix = f"_{dt.date(year, 11, 1) + dt.timedelta(days=year % 7 * 9):%Y%m%d}"
            item_id = f"{state}_{stem}{suffix}"
            item = json.loads(json.dumps(template).replace(template["id"], item_id))
            t_stem = template["assets"]["image"]["href"].rsplit("/", 1)[1].removesuffix(".tif")
            for asset in item["assets"].values():
                if ".blob.core.windows.net/" in asset["href"]:
                    asset["href"] = _blob_href(
                        asset["href"], t_stem=t_stem, state=state, year=year, cell=quad[:5]
                    )
                    asset["href"] = asset["href"].replace(t_stem, stem)
            props = copy.deepcopy(template["properties"])
            hour = template["properties"]["datetime"][11:]
            props.update(
                {
                    "datetime": f"{day.isoformat()}T{hour}",
                    "naip:year": str(year),
                    "naip:state": state,
                    "gsd": 0.6,
                    "proj:epsg": epsg,
                    "proj:bbox": [x0, y0, x1, y1],
                    "proj:shape": [height, width],
                    "proj:transform": [COG_RES, 0.0, x0, 0.0, -COG_RES, y1, 0.0, 0.0, 1.0],
                }
            )
            if "proj:centroid" in props:
                centre = Polygon(ring).centroid
                props["proj:centroid"] = {"lat": round(centre.y, 5), "lon": round(centre.x, 5)}
            item["properties"] = props
            item["geometry"] = {"type": "Polygon", "coordinates": [ring]}
            item["bbox"] = [min(lons), min(lats), max(lons), max(lats)]
            transform = Affine(COG_RES, 0.0, x0, 0.0, -COG_RES, y1)
            base = _field(rng, (height, width))
            veg = _field(rng, (height, width))
            bands = np.stack(
                [60 + 120 * base - 30 * veg, 70 + 100 * base, 60 + 90 * base, 50 + 60 * base + 110 * veg]
            )
            rel = item["assets"]["image"]["href"].split("/naip/", 1)[1]
            write_cog(
                path=blobs / rel, data=np.clip(bands, 1, 255).astype(np.uint8), epsg=epsg, transform=transform
            )
            items.append(item)
            entries.append({"id": item_id, "datetime": props["datetime"], "quad": quad, "quadrant": quadrant})
    return items, entries


def generate_naip(
    *,
    samples: Sequence[Sample],
    seed: int,
    cache_dir: Path,
    fixtures_dir: Path | None = None,
    buffer_m: float = 300.0,
) -> Catalog:
    """Generate (or reuse from ``cache_dir``) the ``naip`` catalogue for the CONUS ``samples``.

    Args:
        samples: sample tiles; those outside :data:`STATES` get no items.
        seed: seed of the flight dates and pixels.
        cache_dir: cache folder; the result is ``<cache_dir>/naip-<hash>``.
        fixtures_dir: folder holding the fixtures (default: the packaged ones,
            :func:`~olmoearth_twin.fixtures.fixtures_root`).
        buffer_m: footprint buffer around the quarter quad (PC: 300 m; see the module docstring).

    ``manifest.json``: ``{"generator": "olmoearth-twin/naip", "seed", "buffer_m", "items": [{"id",
    "datetime", "quad", "quadrant"}], "samples": [{"tile_id", "centre", "intersecting": [ids],
    "containing": [ids]}]}`` (ids sorted).
    """
    folder = Path(fixtures_dir) if fixtures_dir else fx.fixtures_root()
    inputs = {
        "generator": "olmoearth-twin/naip",
        "seed": int(seed),
        "samples": [sample_key(s) for s in samples],
        "buffer_m": float(buffer_m),
        "code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16],
    }

    def build(out: Path) -> None:
        collection = naip_collection(fixtures=folder)
        account, container = collection["msft:storage_account"], collection["msft:container"]
        items, entries = naip_items(
            samples=tuple(samples),
            fixtures=folder,
            blobs=out / "blobs" / account / container,
            rng=np.random.default_rng([int(seed), 0x4E41]),
            buffer_m=float(buffer_m),
        )
        write_ndjson(path=out / "stac" / "collections.ndjson", records=[collection])
        write_ndjson(path=out / "stac" / "items.ndjson", records=items)
        qdir = out / "stac" / "queryables"
        qdir.mkdir(parents=True, exist_ok=True)
        example = items[0] if items else recorded_items(fixtures=folder)[0]
        doc = queryables_for(collection_id="naip", item=example, stac_root=PC_STAC_ROOT)
        (qdir / "naip.json").write_text(json.dumps(doc, indent=1))
        rows = []
        for sample in samples:
            tile = sample.tile.polygon_lonlat()
            rows.append(
                {
                    **sample_key(sample),
                    "intersecting": sorted(i["id"] for i in items if shape(i["geometry"]).intersects(tile)),
                    "containing": sorted(i["id"] for i in items if shape(i["geometry"]).contains(tile)),
                }
            )
        manifest = {
            "generator": "olmoearth-twin/naip",
            "seed": int(seed),
            "buffer_m": float(buffer_m),
            "storage": {"account": account, "container": container},
            "items": entries,
            "samples": rows,
        }
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1))

    return cached_build(cache_dir=cache_dir, name="naip", inputs=inputs, build=build)
