"""``landsat-c2-l2`` items and COGs (Landsat 8/9 OLI/TIRS, 30 m, UTM), one item per scene and date.

Scenes: PC's Landsat ids are per WRS-2 scene and day (``LC08_L2SP_<path><row>_<date>_02_T1``), so
samples whose tiles share a path/row (a stable made-up one per place, not the real WRS-2 geometry) are
covered by the *same* items: two samples whose 12-month windows overlap share the scenes acquired in
the overlap — one item whose COGs cover both tiles, never two items with one id.

Schedule: each scene is imaged every 16 days by Landsat 8 and, 8 days after each of those, by
Landsat 9 (the real combined 8-day revisit), from a phase drawn per scene; items exist on those days
inside any member sample's window ``[centre − 187 d, centre + 173 d)`` (3–4 per monthly period).
Four items in five of a scene are L2SR products (no surface temperature: no ``lwir11``/``qa``/``atran``
/…) and only the 1st, 6th, 11th, … are L2SP, following PC, where L2SR is the rule rather than the
exception (8 of the 10 items of a real ``landsat-c2-l2`` result page are L2SR); a reader that leaves
thermal empty wherever an L2SR item filled a pixel loses most of B10.

COGs: in the CRS of the scene's first sample (a tile of another UTM zone is covered by its bounds
reprojected there). An item's COGs span the crops (tile + 256 m, snapped outward to 30 m) of the
samples whose window holds its date; pixels outside every crop are nodata (0; ``qa_pixel`` 1), and
``proj:shape``/``proj:transform`` describe that extent, like the S2 generator's crops.

Pixels: windows of the real LC08 fixture (``raster/LC08_L2SP_001062_20201031_20201106_02_T2``, USGS
files downsampled to 600 m), one source pixel per 30 m output pixel, a window offset per item (mirrored
at the fixture's edges when the extent is larger than the fixture).
Real: ``blue``/``green``/``red``/``nir08`` (SR_B2–B5), ``qa_pixel`` (QA_PIXEL), ``lwir11`` (ST_B10).
Derived DN mixes (uint16, nodata 0): ``coastal = 0.92·B2 + 600``, ``swir16 = 0.55·B5 + 0.45·B4``,
``swir22 = 0.35·B5 + 0.55·B4 − 800`` (clipped ≥ 7273, i.e. reflectance ≥ 0). ``eo:cloud_cover`` is the
% of QA_PIXEL cloud bit (3) among the filled pixels inside the crops. Only the assets the pipeline
reads get files (the 7 SR bands, ``qa_pixel``, ``lwir11``); the other hrefs (``ang``, ``mtl.*``, ST
auxiliaries) answer 404.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box
from shapely.ops import unary_union

from olmoearth_data.grid import Tile
from olmoearth_data.periods import monthly_periods, span
from olmoearth_data.samples import Sample
from olmoearth_twin.catalog.cogs import write_cog
from olmoearth_twin.catalog.pc_item import clone_item
from olmoearth_twin.catalog.regions import MARGIN_M, geojson_polygon, shp_transform

COLLECTION_ID = "landsat-c2-l2"
RES = 30.0
#: Days between a scene's passes (Landsat 8 and 9 alternate; each alone revisits every 16 days).
REVISIT_DAYS = 8
#: Largest COG side (30 m px, ~123 km) of one item; samples of a scene further apart are refused.
MAX_SCENE_PX = 4096
LC08_FIXTURE = "raster/LC08_L2SP_001062_20201031_20201106_02_T2"
ST_ASSETS = ("lwir11", "qa", "atran", "cdist", "drad", "emis", "emsd", "trad", "urad")
_FILES = {
    "coastal": "SR_B1",
    "blue": "SR_B2",
    "green": "SR_B3",
    "red": "SR_B4",
    "nir08": "SR_B5",
    "swir16": "SR_B6",
    "swir22": "SR_B7",
    "qa_pixel": "QA_PIXEL",
    "lwir11": "ST_B10",
}


@dataclass(frozen=True)
class Scene:
    """Samples sharing a WRS path/row; ``crops`` (one per sample) in metres of ``EPSG:epsg``."""

    path: int
    row: int
    epsg: int
    samples: tuple[Sample, ...]
    crops: tuple[tuple[float, float, float, float], ...]

    @property
    def key(self) -> str:
        """``<path><row>`` (seeds the scene's random generator)."""
        return f"{self.path:03d}{self.row:03d}"


def _wrs(*, lon: float, lat: float) -> tuple[int, int]:
    # Not the real WRS-2 geometry: a stable path/row per place (cells of 360/233° by 1.3°).
    return int((180 - lon) / 360 * 233) % 233 + 1, int((82 - lat) / 1.3) + 1


def _crop(*, tile: Tile, epsg: int) -> tuple[float, float, float, float]:
    """The tile's bounds in ``EPSG:epsg`` plus :data:`MARGIN_M`, snapped outward to :data:`RES`."""
    outline = tile.polygon()
    if tile.epsg != epsg:
        to_scene = Transformer.from_crs(tile.epsg, epsg, always_xy=True).transform
        outline = shp_transform(to_scene, outline.segmentize((tile.bounds[2] - tile.bounds[0]) / 8))
    x0, y0, x1, y1 = outline.bounds
    return (
        math.floor((x0 - MARGIN_M) / RES) * RES,
        math.floor((y0 - MARGIN_M) / RES) * RES,
        math.ceil((x1 + MARGIN_M) / RES) * RES,
        math.ceil((y1 + MARGIN_M) / RES) * RES,
    )


def group_scenes(*, samples: Sequence[Sample]) -> list[Scene]:
    """Scenes of ``samples`` in first-seen order, keyed by the path/row of each tile's centre."""
    by_scene: dict[tuple[int, int], list[Sample]] = {}
    for sample in samples:
        centre = sample.tile.polygon_lonlat().centroid
        by_scene.setdefault(_wrs(lon=centre.x, lat=centre.y), []).append(sample)
    scenes = []
    for (path_, row), members in by_scene.items():
        epsg = members[0].tile.epsg
        crops = tuple(_crop(tile=m.tile, epsg=epsg) for m in members)
        scenes.append(Scene(path=path_, row=row, epsg=epsg, samples=tuple(members), crops=crops))
    return scenes


def _load(*, fixtures: Path) -> dict[str, np.ndarray]:
    prefix = fixtures / LC08_FIXTURE / Path(LC08_FIXTURE).name
    out = {}
    for name in ("SR_B2", "SR_B3", "SR_B4", "SR_B5", "QA_PIXEL", "ST_B10"):
        with rasterio.open(f"{prefix}_{name}.TIF") as ds:
            out[name] = ds.read(1)
    return out


def _bands(*, src: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    b2, b4, b5 = (src[k].astype(np.float64) for k in ("SR_B2", "SR_B4", "SR_B5"))
    fill = src["SR_B2"] == 0

    def u16(a: np.ndarray) -> np.ndarray:
        out = np.clip(np.round(a), 7273, 65535).astype(np.uint16)
        out[fill] = 0
        return out

    return {
        "coastal": u16(0.92 * b2 + 600),
        "blue": src["SR_B2"],
        "green": src["SR_B3"],
        "red": src["SR_B4"],
        "nir08": src["SR_B5"],
        "swir16": u16(0.55 * b5 + 0.45 * b4),
        "swir22": u16(0.35 * b5 + 0.55 * b4 - 800),
        "qa_pixel": src["QA_PIXEL"],
        "lwir11": src["ST_B10"],
    }


def _mirrored(start: int, count: int, size: int) -> np.ndarray:
    """Indices ``start … start + count − 1`` folded back into ``[0, size)`` (mirrored at the edges)."""
    idx = np.arange(start, start + count) % (2 * size)
    return np.where(idx < size, idx, 2 * size - 1 - idx)


def _extent(
    *, scene: Scene, members: list[int], day: dt.date
) -> tuple[tuple[float, float, float, float], np.ndarray]:
    """Bounds (metres) of the member samples' crops and the ``[H, W]`` mask of pixels inside one."""
    crops = [scene.crops[i] for i in members]
    x0, y0 = min(c[0] for c in crops), min(c[1] for c in crops)
    x1, y1 = max(c[2] for c in crops), max(c[3] for c in crops)
    width, height = round((x1 - x0) / RES), round((y1 - y0) / RES)
    if max(width, height) > MAX_SCENE_PX:
        tiles = sorted({scene.samples[i].tile.id for i in members})
        raise ValueError(
            f"Landsat scene {scene.key} on {day}: sample tiles {tiles} span {height}x{width} px at 30 m "
            f"(at most {MAX_SCENE_PX}); keep samples of one path/row whose windows overlap within "
            f"{MAX_SCENE_PX * RES / 1000:.0f} km of each other, or generate them in separate catalogues"
        )
    inside = np.zeros((height, width), bool)
    for cx0, cy0, cx1, cy1 in crops:
        r0, c0 = round((y1 - cy1) / RES), round((cx0 - x0) / RES)
        inside[r0 : r0 + round((cy1 - cy0) / RES), c0 : c0 + round((cx1 - cx0) / RES)] = True
    return (x0, y0, x1, y1), inside


def generate_landsat_scene(
    *,
    scene: Scene,
    template: dict[str, Any],
    fixtures: Path,
    blobs: Path,
    rng: np.random.Generator,
    wrong_crs: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Items and manifest entries of one scene (time-sorted); COGs written under ``blobs``
    (``<account>/<container>``).

    ``wrong_crs``: rewrite one item's ``red`` COG with EPSG:4326 as its CRS (same pixels and numbers),
    so it disagrees with the item's ``proj:epsg`` (a fault-injection option). The item is the one a
    search for the first sample's first month lists first (least cloudy), so a reader meets it; its
    manifest entry gets ``"bad_asset": "wrong_crs"``.
    """
    full = _bands(src=_load(fixtures=fixtures))
    fh, fw = full["blue"].shape
    spans = [span(centre=s.centre) for s in scene.samples]
    lon = unary_union([s.tile.polygon_lonlat() for s in scene.samples]).centroid.x
    to_ll = Transformer.from_crs(scene.epsg, 4326, always_xy=True).transform
    phase = int(rng.integers(0, 2 * REVISIT_DAYS))
    first = min(p.start for p in spans)
    start = first + dt.timedelta(days=(phase - first.toordinal()) % REVISIT_DAYS)
    path_, row = scene.path, scene.row
    items, entries, reds = [], [], []
    count = 0
    for day in _pass_days(first=start, last=max(p.end for p in spans)):
        members = [i for i, p in enumerate(spans) if p.start <= day < p.end]
        if not members:
            continue  # between two member windows a year or more apart
        count += 1
        (x0, y0, x1, y1), inside = _extent(scene=scene, members=members, day=day)
        height, width = inside.shape
        transform = Affine(RES, 0.0, x0, 0.0, -RES, y1)
        landsat9 = (day.toordinal() - phase) // REVISIT_DAYS % 2 == 1
        platform, sat = ("landsat-9", "LC09") if landsat9 else ("landsat-8", "LC08")
        l2sr = count % 5 != 1  # 4 in 5 (PC's share): items 2-5, 7-10, ... of the scene
        correction = "L2SR" if l2sr else "L2SP"
        processed = day + dt.timedelta(days=int(rng.integers(1, 10)))
        short = f"{sat}_{correction}_{path_:03d}{row:03d}_{day:%Y%m%d}_02_T1"
        product = f"{sat}_{correction}_{path_:03d}{row:03d}_{day:%Y%m%d}_{processed:%Y%m%d}_02_T1"
        folder = f"level-2/standard/oli-tirs/{day.year}/{path_:03d}/{row:03d}/{product}"
        rows = _mirrored(int(rng.integers(0, fh)), height, fh)
        cols = _mirrored(int(rng.integers(0, fw)), width, fw)
        window = {
            k: np.where(inside, v[np.ix_(rows, cols)], 1 if k == "qa_pixel" else 0).astype(v.dtype)
            for k, v in full.items()
        }
        filled = window["qa_pixel"] != 1
        cloud = float(((window["qa_pixel"] & (1 << 3)) > 0)[filled].mean() * 100) if filled.any() else 0.0
        hrefs = {}
        for asset, data in window.items():
            if l2sr and asset in ST_ASSETS:
                continue
            rel = f"{folder}/{product}_{_FILES[asset]}.TIF"
            nodata = 1 if asset == "qa_pixel" else 0
            write_cog(path=blobs / rel, data=data, epsg=scene.epsg, transform=transform, nodata=nodata)
            hrefs[asset] = rel
        reds.append(blobs / hrefs["red"])
        when = dt.datetime.combine(day, dt.time(10, 30), tzinfo=dt.UTC) - dt.timedelta(hours=lon / 15)
        when += dt.timedelta(seconds=float(rng.uniform(0, 59)))
        doy = day.timetuple().tm_yday
        props = {
            "datetime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "created": (dt.datetime.combine(processed, dt.time(9, 20), tzinfo=dt.UTC)).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            ),
            "platform": platform,
            "proj:epsg": scene.epsg,
            "proj:shape": [height, width],
            "proj:transform": [RES, 0.0, x0, 0.0, -RES, y1],
            "eo:cloud_cover": round(cloud, 2),
            "landsat:cloud_cover_land": round(cloud, 2),
            "landsat:wrs_path": f"{path_:03d}",
            "landsat:wrs_row": f"{row:03d}",
            "landsat:scene_id": f"{sat[:2]}{sat[3]}{path_:03d}{row:03d}{day.year}{doy:03d}LGN00",
            "landsat:correction": correction,
            "view:sun_azimuth": round(float(rng.uniform(120, 160)), 8),
            "view:sun_elevation": round(float(rng.uniform(20, 65)), 8),
        }
        template_product = template["assets"]["red"]["href"].rsplit("/", 1)[1].rsplit("_SR_", 1)[0]
        template_folder = template["assets"]["red"]["href"].split("landsat-c2/", 1)[1].rsplit("/", 1)[0]
        items.append(
            clone_item(
                template=template,
                item_id=short,
                geometry=geojson_polygon(shp_transform(to_ll, box(x0, y0, x1, y1))),
                properties=props,
                hrefs={},
                drop_assets=ST_ASSETS if l2sr else (),
                replace={template_folder: folder, template_product: product},
            )
        )
        entries.append(
            {
                "id": short,
                "datetime": props["datetime"],
                "platform": platform,
                "correction": correction,
                "eo:cloud_cover": props["eo:cloud_cover"],
                "epsg": scene.epsg,
                "cog_bounds": [x0, y0, x1, y1],
                "assets_with_files": sorted(hrefs),
                "tiles": list(dict.fromkeys(scene.samples[i].tile.id for i in members)),
            }
        )
    if wrong_crs:
        _spoil_crs(entries=entries, reds=reds, sample=scene.samples[0])
    return items, entries


def _spoil_crs(*, entries: list[dict[str, Any]], reds: list[Path], sample: Sample) -> None:
    """Rewrite the ``red`` COG (``reds``: per entry) of the first search hit of ``sample``'s first
    month in EPSG:4326."""
    period = monthly_periods(centre=sample.centre)[0]
    lo, hi = f"{period.start.isoformat()}T00:00:00Z", f"{period.end.isoformat()}T00:00:00Z"
    hits = [i for i, e in enumerate(entries) if sample.tile.id in e["tiles"] and lo <= e["datetime"] < hi]
    if not hits:
        raise ValueError(f"wrong_crs: no Landsat item in {sample.tile.id}'s first month {period}")
    # The order of the manifest's period lists and of a search sorted by cloud cover, then id.
    index = min(hits, key=lambda i: (entries[i]["eo:cloud_cover"], entries[i]["id"]))
    with rasterio.open(reds[index]) as ds:
        data, transform, nodata = ds.read(1), ds.transform, ds.nodata
    write_cog(path=reds[index], data=data, epsg=4326, transform=transform, nodata=nodata)
    entries[index]["bad_asset"] = "wrong_crs"


def _pass_days(*, first: dt.date, last: dt.date) -> list[dt.date]:
    """``first``, ``first + 8 d``, … before ``last``."""
    return [first + dt.timedelta(days=d) for d in range(0, (last - first).days, REVISIT_DAYS)]
