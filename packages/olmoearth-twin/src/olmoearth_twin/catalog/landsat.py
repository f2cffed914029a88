"""``landsat-c2-l2`` items and COGs (Landsat 8/9 OLI/TIRS, 30 m, on the region's UTM grid).

Pixels: windows of the real LC08 fixture (``raster/LC08_L2SP_001062_20201031_20201106_02_T2``, USGS
files downsampled to 600 m), one source pixel per 30 m output pixel, a window offset per item.
Real: ``blue``/``green``/``red``/``nir08`` (SR_B2–B5), ``qa_pixel`` (QA_PIXEL), ``lwir11`` (ST_B10).
Derived DN mixes (uint16, nodata 0): ``coastal = 0.92·B2 + 600``, ``swir16 = 0.55·B5 + 0.45·B4``,
``swir22 = 0.35·B5 + 0.55·B4 − 800`` (clipped ≥ 7273, i.e. reflectance ≥ 0). ``eo:cloud_cover`` is the
% of QA_PIXEL cloud bit (3) among the window's filled pixels.

Schedule: per monthly period of the region's centre date a Landsat 8 and a Landsat 9 pass 8 days apart.
Every fifth item is an L2SR product (no surface temperature: no ``lwir11``/``qa``/``atran``/…), as PC
has when the thermal band is unavailable. Only the assets the pipeline reads get files (the 7 SR bands,
``qa_pixel``, ``lwir11``); the other hrefs (``ang``, ``mtl.*``, ST auxiliaries) answer 404.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from shapely.geometry import box

from olmoearth_data.periods import monthly_periods
from olmoearth_twin.catalog.cogs import write_cog
from olmoearth_twin.catalog.pc_item import clone_item
from olmoearth_twin.catalog.regions import Region, geojson_polygon, shp_transform

COLLECTION_ID = "landsat-c2-l2"
RES = 30.0
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


def _wrs(*, lon: float, lat: float) -> tuple[int, int]:
    # Not the real WRS-2 geometry: a stable path/row per place so ids differ between regions.
    return int((180 - lon) / 360 * 233) % 233 + 1, int((82 - lat) / 1.3) + 1


def generate_landsat_region(
    *,
    region: Region,
    template: dict[str, Any],
    fixtures: Path,
    blobs: Path,
    rng: np.random.Generator,
    wrong_crs: bool = False,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Items and manifest entries of one region; COGs written under ``blobs`` (``<account>/<container>``).

    ``wrong_crs``: write the first item's ``red`` COG with EPSG:4326 as its CRS (same pixels and
    numbers), so it disagrees with the item's ``proj:epsg`` (a fault-injection option).
    """
    full = _bands(src=_load(fixtures=fixtures))
    x0, y0, x1, y1 = region.snapped(res=RES)
    width, height = round((x1 - x0) / RES), round((y1 - y0) / RES)
    transform = Affine(RES, 0.0, x0, 0.0, -RES, y1)
    to_ll = Transformer.from_crs(region.epsg, 4326, always_xy=True).transform
    geometry = shp_transform(to_ll, box(x0, y0, x1, y1))
    lon, lat = geometry.centroid.x, geometry.centroid.y
    path_, row = _wrs(lon=lon, lat=lat)
    fh, fw = full["blue"].shape
    items, entries = [], []
    count = 0
    for period in monthly_periods(centre=region.samples[0].centre):
        first = period.start + dt.timedelta(days=int(rng.integers(0, 8)))
        for platform, day in (("landsat-8", first), ("landsat-9", first + dt.timedelta(days=8))):
            count += 1
            l2sr = count % 5 == 0
            correction = "L2SR" if l2sr else "L2SP"
            sat = "LC08" if platform == "landsat-8" else "LC09"
            processed = day + dt.timedelta(days=int(rng.integers(1, 10)))
            short = f"{sat}_{correction}_{path_:03d}{row:03d}_{day:%Y%m%d}_02_T1"
            product = f"{sat}_{correction}_{path_:03d}{row:03d}_{day:%Y%m%d}_{processed:%Y%m%d}_02_T1"
            folder = f"level-2/standard/oli-tirs/{day.year}/{path_:03d}/{row:03d}/{product}"
            r0, c0 = int(rng.integers(0, fh - height)), int(rng.integers(0, fw - width))
            window = {k: v[r0 : r0 + height, c0 : c0 + width] for k, v in full.items()}
            filled = window["qa_pixel"] != 1
            cloud = float(((window["qa_pixel"] & (1 << 3)) > 0)[filled].mean() * 100) if filled.any() else 0.0
            hrefs = {}
            for asset, data in window.items():
                if l2sr and asset in ST_ASSETS:
                    continue
                rel = f"{folder}/{product}_{_FILES[asset]}.TIF"
                nodata = 1 if asset == "qa_pixel" else 0
                epsg = 4326 if wrong_crs and count == 1 and asset == "red" else region.epsg
                write_cog(path=blobs / rel, data=data, epsg=epsg, transform=transform, nodata=nodata)
                hrefs[asset] = rel
            when = dt.datetime.combine(day, dt.time(10, 30), tzinfo=dt.UTC) - dt.timedelta(hours=lon / 15)
            when += dt.timedelta(seconds=float(rng.uniform(0, 59)))
            doy = day.timetuple().tm_yday
            props = {
                "datetime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "created": (dt.datetime.combine(processed, dt.time(9, 20), tzinfo=dt.UTC)).strftime(
                    "%Y-%m-%dT%H:%M:%S.%fZ"
                ),
                "platform": platform,
                "proj:epsg": region.epsg,
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
            item = clone_item(
                template=template,
                item_id=short,
                geometry=geojson_polygon(geometry),
                properties=props,
                hrefs={},
                drop_assets=ST_ASSETS if l2sr else (),
                replace={template_folder: folder, template_product: product},
            )
            items.append(item)
            entries.append(
                {
                    "id": short,
                    "datetime": props["datetime"],
                    "platform": platform,
                    "correction": correction,
                    "eo:cloud_cover": props["eo:cloud_cover"],
                    "epsg": region.epsg,
                    "cog_bounds": [x0, y0, x1, y1],
                    "assets_with_files": sorted(hrefs),
                    "tiles": [s.tile_id for s in region.samples],
                }
            )
    return items, entries
