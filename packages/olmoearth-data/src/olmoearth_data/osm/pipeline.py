"""Sampling pipeline: an OSM input → extraction → per-category tile draw → centre dates → tables.

Inputs (exactly one): an OSM file; a bbox fetched from an Overpass endpoint with osmnx (saved to a
``.osm`` file first, then the same pass runs on it); or a JSON list of ``[lon, lat]`` points (the
reference publishes its sample locations as ``lon_lats.json``; such tiles carry no categories and
are not capped).

``dates_per_tile`` (default 1, the reference rule) gives every chosen tile that many distinct centre
dates with disjoint 12-period windows (:func:`~olmoearth_data.osm.sampling.centre_date_sets`, a
deliberate extension): the table then holds ``dates_per_tile`` rows per tile, tile by tile.
"""

from __future__ import annotations

import csv
import json
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from olmoearth_data.osm.categories import RELEVANT_KEYS
from olmoearth_data.osm.extract import OsmInputError, extract_osm
from olmoearth_data.osm.sampling import (
    DEFAULT_PER_CATEGORY,
    MAX_DATES_PER_TILE,
    CategoryDraw,
    centre_date_sets,
    draw_tiles,
    point_tiles,
)
from olmoearth_data.osm.time import NaipDates
from olmoearth_data.samples import Sample, write_sample_table

#: Uncompressed bytes per sample of the corpus schema (12 periods): S2 8.8 MB, S1 1.6 MB, Landsat
#: 3.1 MB, OSM raster 31 MB (30 × 1024² uint8), maps ~0.7 MB.
BYTES_PER_SAMPLE_UNCOMPRESSED = int((8.8 + 1.6 + 3.1 + 31 + 0.7) * 1e6)
#: Assumed zstd ratio: imagery ~1.5×, the sparse 0/1 OSM raster ~20× → ~9 MB per sample on disk.
ASSUMED_BYTES_PER_SAMPLE_ON_DISK = int((8.8 + 1.6 + 3.1 + 0.7) / 1.5 * 1e6 + 31e6 / 20)
ASSUMED_SAMPLES_PER_MIN = 20.0


@dataclass(frozen=True)
class SamplingRun:
    """What :func:`run_sampling` wrote and how many tiles it chose."""

    table: Path
    summary: Path
    n_samples: int
    draws: tuple[CategoryDraw, ...]


def read_lonlats(*, path: Path | str) -> tuple[np.ndarray, np.ndarray]:
    """Read a JSON list of ``[lon, lat]`` pairs → two float64 ``[N]`` arrays (degrees)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        arr = np.asarray(data, dtype=np.float64).reshape(-1, 2)
    except FileNotFoundError:
        raise
    except (ValueError, TypeError) as exc:
        raise ValueError(f"lon/lat list {path} is not a JSON list of [lon, lat] pairs: {exc}") from exc
    return arr[:, 0], arr[:, 1]


def fetch_overpass(*, bbox: tuple[float, float, float, float], out: Path | str,
                   overpass_url: str | None = None) -> Path:  # fmt: skip
    """Fetch every element with a category key inside ``bbox`` = (west, south, east, north) degrees.

    Uses osmnx's Overpass request (so ``osmnx.settings`` — URL, rate limit, cache — apply; the URL is
    overridden by ``overpass_url``) and writes the response to ``out`` as OSM XML, sorted by type/id.
    """
    import osmium
    import osmnx as ox
    from osmnx import _overpass, utils_geo

    if overpass_url:
        ox.settings.overpass_url = overpass_url
    west, south, east, north = bbox
    if not (west < east and south < north):
        raise ValueError(f"bad bbox {bbox}: expected W,S,E,N with W<E and S<N")
    poly = utils_geo.bbox_to_poly((west, south, east, north))
    elements: dict[tuple[str, int], dict] = {}
    for coord_str in _overpass._make_overpass_polygon_coord_strs(poly):
        query = _overpass._create_overpass_features_query(
            coord_str, dict.fromkeys(sorted(RELEVANT_KEYS), True)
        )
        response = _overpass._overpass_request(OrderedDict(data=query))
        for el in response.get("elements", []):
            elements[(el["type"], int(el["id"]))] = el
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    rank = {"node": 0, "way": 1, "relation": 2}
    writer = osmium.SimpleWriter(str(out))
    try:
        for (kind, _), el in sorted(elements.items(), key=lambda kv: (rank[kv[0][0]], kv[0][1])):
            tags = el.get("tags", {})
            if kind == "node":
                writer.add_node(
                    osmium.osm.mutable.Node(id=el["id"], location=(el["lon"], el["lat"]), tags=tags)
                )
            elif kind == "way":
                writer.add_way(osmium.osm.mutable.Way(id=el["id"], nodes=el["nodes"], tags=tags))
            else:
                members = [(m["type"][0], m["ref"], m.get("role", "")) for m in el.get("members", [])]
                writer.add_relation(osmium.osm.mutable.Relation(id=el["id"], members=members, tags=tags))
    finally:
        writer.close()
    return out


def run_sampling(
    *, out: Path | str, osm: Path | str | None = None, lonlats: Path | str | None = None,
    per_category: int = DEFAULT_PER_CATEGORY, seed: int = 0, work_dir: Path | str | None = None,
    naip_stac_url: str | None = None, progress: bool = False, node_index: str | None = None,
    dry_run: bool = False, dates_per_tile: int = 1, workers: int = 1,
) -> SamplingRun:  # fmt: skip
    """Write the sample table ``out`` (GeoParquet) and ``<out stem>_summary.csv``/``.json``.

    Exactly one of ``osm`` (an OSM file) or ``lonlats`` (a JSON list) must be given. ``work_dir``
    (default ``<out>.work``) keeps the extraction (points + per-tile raster features). ``dry_run``
    extracts and draws but writes no table (``n_samples`` is then what the table would hold).
    ``dates_per_tile``: centre dates (rows) per chosen tile, 1..5 (see the module docstring).
    ``workers``: processes of the OSM pass (:func:`~olmoearth_data.osm.extract.extract_osm`); the
    table is the same for any number.
    """
    out = Path(out)
    if (osm is None) == (lonlats is None):
        raise ValueError("give exactly one input: an OSM file or a lon/lat list")
    if not 1 <= dates_per_tile <= MAX_DATES_PER_TILE:
        raise ValueError(
            f"dates per tile must be between 1 (the reference rule) and {MAX_DATES_PER_TILE} (disjoint "
            f"360-day windows in the 8-year date range), got {dates_per_tile}"
        )
    draws: list[CategoryDraw] = []
    if osm is not None:
        work = Path(work_dir) if work_dir else out.with_suffix(".work")
        res = extract_osm(path=osm, out_dir=work, seed=seed, node_index=node_index, progress=progress,
                          workers=workers)  # fmt: skip
        pts = pq.read_table(res.points, columns=["category", "lon", "lat"])
        chosen, draws = draw_tiles(
            category=np.asarray(pts["category"].to_pylist(), dtype=object),
            lon=pts["lon"].to_numpy(),
            lat=pts["lat"].to_numpy(),
            per_category=per_category,
            seed=seed,
        )
    else:
        lon, lat = read_lonlats(path=lonlats)
        chosen = {t: () for t in sorted(set(point_tiles(lon=lon, lat=lat)))}
    if not chosen:
        raise OsmInputError(f"no tile was chosen from {osm or lonlats}: the input has no categorised feature")
    if dry_run:
        n = len(chosen) * dates_per_tile
        return SamplingRun(out, out.with_name(out.stem + "_summary.csv"), n, tuple(draws))
    naip = NaipDates(stac_url=naip_stac_url) if naip_stac_url else None
    dates = centre_date_sets(tiles=list(chosen), k=dates_per_tile, seed=seed, naip=naip)
    samples = [Sample(t, d, cats) for t, cats in chosen.items() for d in dates[t]]
    write_sample_table(out, samples=samples)
    summary = out.with_name(out.stem + "_summary.csv")
    with summary.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["category", "features_found", "tiles_found", "tiles_drawn"])
        w.writeheader()
        for d in draws:
            w.writerow(asdict(d))
    summary.with_suffix(".json").write_text(json.dumps([asdict(d) for d in draws], indent=2))
    return SamplingRun(out, summary, len(samples), tuple(draws))


def estimate(*, n_samples: int, samples_per_min: float = ASSUMED_SAMPLES_PER_MIN) -> dict[str, float]:
    """Corpus size/time estimate for ``n_samples`` tiles (bytes and hours; assumptions in the constants)."""
    return {
        "samples": n_samples,
        "bytes_uncompressed": n_samples * BYTES_PER_SAMPLE_UNCOMPRESSED,
        "bytes_on_disk_assumed": n_samples * ASSUMED_BYTES_PER_SAMPLE_ON_DISK,
        "hours": n_samples / samples_per_min / 60.0,
        "samples_per_min": samples_per_min,
    }


def format_estimate(est: dict[str, float]) -> str:
    """One human line for :func:`estimate` (what ``make dataset`` prints before it starts)."""
    return (
        f"estimate: {int(est['samples'])} samples, {est['bytes_uncompressed'] / 1e9:.2f} GB uncompressed "
        f"(~45 MB/sample: S2 8.8 + S1 1.6 + Landsat 3.1 + OSM 31 + maps 0.7), "
        f"~{est['bytes_on_disk_assumed'] / 1e9:.2f} GB on disk "
        f"assuming zstd 1.5× imagery / 20× OSM 0/1 raster, "
        f"~{est['hours']:.1f} h at {est['samples_per_min']:g} samples/min"
    )
