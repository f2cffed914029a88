"""``sentinel-1-rtc`` items and COGs (linear gamma0, float32, 10 m, on the region's UTM grid).

Pixels: windows of the real GRD fixture (``raster/S1A_IW_GRDH_1SDV_20180716T004042_…/iw-vv.tiff`` and
``iw-vh.tiff``, uint16 amplitude DN, radar geometry), one source pixel per 10 m output pixel, with a
window offset per item (the GRD's zero border filled with its median). Gamma0 = ``DN² · k`` with ``k`` per
polarisation chosen so the fixture's median maps to 0.08 (VV) / 0.02 (VH) — typical land values; the
range is then ≈ 0.001–0.5. Values are rounded to 0.05 dB steps (keeps the COGs small; far below the
speckle). Nodata −32768 beyond the swath edge of ascending passes (a straight edge through the region).

Schedule: one item per monthly period of each sample's centre date, descending in even periods and
ascending in odd ones (so both orbit directions appear per region), 06:00/18:00 local-ish UTC offsets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer
from shapely.geometry import Polygon, box

from olmoearth_data.periods import monthly_periods
from olmoearth_twin.catalog.cogs import write_cog
from olmoearth_twin.catalog.pc_item import clone_item
from olmoearth_twin.catalog.regions import Region, geojson_polygon, shp_transform

COLLECTION_ID = "sentinel-1-rtc"
RES = 10.0
NODATA = -32768.0
GRD_FIXTURE = "raster/S1A_IW_GRDH_1SDV_20180716T004042_20180716T004107_022812_02792A_FD5B"
_MEDIAN = {"vv": 0.08, "vh": 0.02}


def _load_grd(*, fixtures: Path) -> dict[str, np.ndarray]:
    out = {}
    for pol in ("vv", "vh"):
        with rasterio.open(fixtures / GRD_FIXTURE / f"iw-{pol}.tiff") as ds:
            out[pol] = ds.read(1).astype(np.float64)
    return out


def _gamma0(*, dn: np.ndarray, pol: str, k: float) -> np.ndarray:
    gamma = np.maximum(dn, 1.0) ** 2 * k
    db = np.round(10 * np.log10(gamma) * 20) / 20  # 0.05 dB steps
    return (10 ** (db / 10)).astype(np.float32)


def generate_s1_region(
    *,
    region: Region,
    template: dict[str, Any],
    fixtures: Path,
    blobs: Path,
    rng: np.random.Generator,
    bad: set[str],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Items and manifest entries of one region; COGs written under ``blobs`` (``<account>/<container>``).

    ``bad`` (fault options) may hold ``"nan"`` (NaN patches in the first item's VV), ``"all_nodata"``
    (the second item entirely −32768) and ``"truncated"`` (the third item's VH COG cut in half).
    """
    grd = _load_grd(fixtures=fixtures)
    ks = {pol: _MEDIAN[pol] / float(np.median(grd[pol][grd[pol] > 0] ** 2)) for pol in grd}
    x0, y0, x1, y1 = region.snapped(res=RES)
    width, height = round((x1 - x0) / RES), round((y1 - y0) / RES)
    transform = Affine(RES, 0.0, x0, 0.0, -RES, y1)
    to_ll = Transformer.from_crs(region.epsg, 4326, always_xy=True).transform
    gh, gw = grd["vv"].shape
    yy, xx = np.mgrid[0:height, 0:width]
    px, py = x0 + (xx + 0.5) * RES, y1 - (yy + 0.5) * RES
    items, entries = [], []
    centre = region.samples[0].centre
    for index, period in enumerate(monthly_periods(centre=centre)):
        ascending = index % 2 == 1
        day = period.start + dt.timedelta(days=int(rng.integers(2, 26)))
        hour = 17 if ascending else 5
        start = dt.datetime.combine(
            day, dt.time(hour, int(rng.integers(0, 59)), int(rng.integers(0, 59))), tzinfo=dt.UTC
        ) + dt.timedelta(microseconds=int(rng.integers(0, 999999)))
        end = start + dt.timedelta(seconds=25, microseconds=int(rng.integers(0, 999999)))
        mid = start + (end - start) / 2
        platform = "SENTINEL-1A" if day < dt.date(2025, 4, 1) or index % 3 else "SENTINEL-1C"
        # Absolute orbit numbering of S1A: ~175 orbits per 12 days from 2014-04-03.
        absolute = int((day - dt.date(2014, 4, 3)).days * 175 / 12) + 73
        relative = (absolute - 73) % 175 + 1
        datatake = int(rng.integers(0x10000, 0xFFFFF))
        stamp = f"{start:%Y%m%dT%H%M%S}_{end:%Y%m%dT%H%M%S}"
        grd_id = f"S1{platform[-1]}_IW_GRDH_1SDV_{stamp}_{absolute:06d}_{datatake:06X}"
        item_id = f"{grd_id}_rtc"
        unique = hashlib.sha256(item_id.encode()).hexdigest()[:4].upper()
        folder = f"GRD/{day.year}/{day.month}/{day.day}/IW/DV/{grd_id}_{unique}/measurement"
        r0 = int(rng.integers(0, max(1, gh - height)))
        c0 = int(rng.integers(0, max(1, gw - width)))
        valid = np.ones((height, width), bool)
        footprint = box(x0, y0, x1, y1)
        edge = None
        if ascending:
            # A straight swath edge through the region, tilted ~10°; nodata on its western side.
            angle = np.deg2rad(rng.uniform(-10, 10))
            normal = (np.cos(angle), np.sin(angle))
            point = (x0 + (x1 - x0) * rng.uniform(0.3, 0.7), (y0 + y1) / 2)
            valid = (px - point[0]) * normal[0] + (py - point[1]) * normal[1] >= 0
            big = 1e6
            half = Polygon(
                [
                    (point[0] - normal[1] * big, point[1] + normal[0] * big),
                    (point[0] + normal[1] * big, point[1] - normal[0] * big),
                    (
                        point[0] + normal[1] * big + normal[0] * big,
                        point[1] - normal[0] * big + normal[1] * big,
                    ),
                    (
                        point[0] - normal[1] * big + normal[0] * big,
                        point[1] + normal[0] * big + normal[1] * big,
                    ),
                ]
            )
            footprint = footprint.intersection(half)
            edge = {"point": list(point), "normal": list(normal)}
        hrefs, sizes = {}, {}
        for pol in ("vv", "vh"):
            window = grd[pol][r0 : r0 + height, c0 : c0 + width]
            window = np.pad(
                window, ((0, height - window.shape[0]), (0, width - window.shape[1])), mode="reflect"
            )
            # The GRD's zero border (outside its swath) becomes the median, not a fake dark area.
            window = np.where(window > 0, window, np.median(grd[pol][grd[pol] > 0]))
            data = _gamma0(dn=window, pol=pol, k=ks[pol])
            data[~valid] = NODATA
            if "nan" in bad and index == 0 and pol == "vv":
                data[: height // 4, : width // 4] = np.nan
            if "all_nodata" in bad and index == 1:
                data[:] = NODATA
            rel = f"{folder}/iw-{pol}.rtc.tiff"
            path = blobs / rel
            write_cog(path=path, data=data, epsg=region.epsg, transform=transform, nodata=NODATA)
            if "truncated" in bad and index == 2 and pol == "vh":
                raw = path.read_bytes()
                path.write_bytes(raw[: len(raw) // 2])
            hrefs[pol] = rel
            sizes[pol] = (path.stat().st_size, hashlib.md5(path.read_bytes()).hexdigest())
        geometry = shp_transform(to_ll, footprint)
        props = {
            "datetime": mid.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "start_datetime": start.isoformat(sep=" "),
            "end_datetime": end.isoformat(sep=" "),
            "platform": platform,
            "proj:epsg": region.epsg,
            "proj:bbox": [x0, y0, x1, y1],
            "proj:shape": [height, width],
            "proj:transform": [RES, 0.0, x0, 0.0, -RES, y1, 0.0, 0.0, 1.0],
            "s1:shape": [width, height],
            "s1:datatake_id": str(datatake),
            "sat:orbit_state": "ascending" if ascending else "descending",
            "sat:absolute_orbit": absolute,
            "sat:relative_orbit": relative,
            "s1:orbit_source": "POEORB" if index % 4 else "RESORB",
            "s1:product_timeliness": "Fast-24h",
            "sat:platform_international_designator": "2014-016A" if platform.endswith("A") else "2024-235A",
        }
        item = clone_item(
            template=template,
            item_id=item_id,
            geometry=geojson_polygon(geometry),
            properties=props,
            hrefs=hrefs,
            replace={template["id"].removesuffix("_rtc"): grd_id},
        )
        for pol in ("vv", "vh"):
            item["assets"][pol]["file:size"] = sizes[pol][0]
            item["assets"][pol]["file:checksum"] = sizes[pol][1]
        items.append(item)
        entries.append(
            {
                "id": item_id,
                "datetime": props["datetime"],
                "orbit_state": props["sat:orbit_state"],
                "epsg": region.epsg,
                "cog_bounds": [x0, y0, x1, y1],
                "swath_edge": edge,
                "tiles": [s.tile.id for s in region.samples if s.tile.polygon_lonlat().intersects(geometry)],
            }
        )
    return items, entries
