"""Static layers on lon/lat grids: ``esa-worldcover`` (3° tiles), ``nasadem`` and ``cop-dem-glo-30`` (1°).

Items carry the real tile ids, footprints and asset hrefs of the tiles touching the samples; their COGs
are crops around the samples on the product's own pixel grid — the union of the lon/lat bounds (+ 256 m)
of every region touching the tile, so regions sharing a tile share one item whose COG covers them all —
and the item/asset ``proj:shape``/``proj:transform`` describe that crop.

Pixels:
* WorldCover: over each Sentinel-2 granule group, the classes of the group's synthetic ground
  (:mod:`~olmoearth_twin.catalog.land_cover`, nearest-neighbour onto the 1/12000° grid), so the map
  agrees with the Sentinel-2 pixels under it; elsewhere windows of the real tile
  ``raster/ESA_WorldCover_10m_2021_v200_N00E006_Map.tif`` (classes as they are), offset per item.
  v200 (2021) and v100 (2020) items, as on PC, with the same classes over the groups.
* NASADEM: the real 1″ DEM ``raster/Rome-30m-DEM.tif`` (int16), mirrored to fill the crop, plus a
  constant per 1° cell (so neighbouring places differ); nodata −32768.
* Copernicus DEM: windows of the real ``raster/Copernicus_DSM_COG_10_N00_00_E006_00_DEM.tif`` (float32),
  with the longitude spacing of its latitude band (1″ below 50°, 1.5″ to 60°, 2″ to 70°, 3″ to 80°).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window
from shapely.geometry import box

from olmoearth_twin.catalog.cogs import write_cog
from olmoearth_twin.catalog.land_cover import GroupLandCover
from olmoearth_twin.catalog.pc_item import clone_item
from olmoearth_twin.catalog.regions import Region, geojson_polygon

WORLDCOVER_FIXTURE = "raster/ESA_WorldCover_10m_2021_v200_N00E006_Map.tif"
NASADEM_FIXTURE = "raster/Rome-30m-DEM.tif"
COPDEM_FIXTURE = "raster/Copernicus_DSM_COG_10_N00_00_E006_00_DEM.tif"
#: Largest WorldCover crop side (1/12000° px, 1°): a crop over far-apart samples of one 3° tile would
#: need up to 36000² px (1.3 GB).
MAX_WORLDCOVER_PX = 12000


def _cells(*, bounds: tuple[float, float, float, float], size: int) -> list[tuple[int, int]]:
    """Lower-left (lat, lon) corners of the ``size``° cells touching ``bounds`` (west, south, east, north)."""
    w, s, e, n = bounds
    lats = range(math.floor(s / size) * size, math.floor(n / size) * size + 1, size)
    lons = range(math.floor(w / size) * size, math.floor(e / size) * size + 1, size)
    return [(lat, lon) for lat in lats for lon in lons]


def _crop(
    *,
    bounds: tuple[float, float, float, float],
    origin: tuple[float, float],
    res: tuple[float, float],
    limit: tuple[float, float, float, float],
) -> tuple[Affine, int, int]:
    """Transform and (height, width) of ``bounds`` ∩ ``limit`` snapped to the grid at ``origin`` (x0, y1)."""
    w, s, e, n = (
        max(bounds[0], limit[0]),
        max(bounds[1], limit[1]),
        min(bounds[2], limit[2]),
        min(bounds[3], limit[3]),
    )
    rx, ry = res
    c0, c1 = math.floor((w - origin[0]) / rx), math.ceil((e - origin[0]) / rx)
    r0, r1 = math.floor((origin[1] - n) / ry), math.ceil((origin[1] - s) / ry)
    return Affine(rx, 0.0, origin[0] + c0 * rx, 0.0, -ry, origin[1] - r0 * ry), r1 - r0, c1 - c0


def _cell_bounds(
    *, regions: list[Region], size: int
) -> dict[tuple[int, int], tuple[float, float, float, float]]:
    """Lower-left (lat, lon) of each ``size``° cell touching a region → union of those regions'
    lon/lat bounds (west, south, east, north), cells in first-seen order."""
    out: dict[tuple[int, int], tuple[float, float, float, float]] = {}
    for region in regions:
        bounds = region.lonlat_bounds()
        for cell in _cells(bounds=bounds, size=size):
            w, s, e, n = out.get(cell, bounds)
            out[cell] = (min(w, bounds[0]), min(s, bounds[1]), max(e, bounds[2]), max(n, bounds[3]))
    return out


def _ns(lat: int, width: int = 2) -> str:
    return f"{'N' if lat >= 0 else 'S'}{abs(lat):0{width}d}"


def _ew(lon: int) -> str:
    return f"{'E' if lon >= 0 else 'W'}{abs(lon):03d}"


def _paste_land_cover(
    *, data: np.ndarray, transform: Affine, land_cover: Sequence[GroupLandCover]
) -> np.ndarray:
    """``data`` (uint8 ``[h, w]`` on the EPSG:4326 grid ``transform``) with every group's classes
    written over it, nearest neighbour."""
    out = data.copy()
    for cover in land_cover:
        pasted = np.zeros_like(out)
        reproject(
            source=cover.classes,
            destination=pasted,
            src_transform=cover.transform,
            src_crs=CRS.from_epsg(cover.epsg),
            src_nodata=0,
            dst_transform=transform,
            dst_crs=CRS.from_epsg(4326),
            dst_nodata=0,
            resampling=Resampling.nearest,
        )
        out = np.where(pasted > 0, pasted, out)
    return out


def worldcover_items(
    *,
    regions: list[Region],
    template: dict[str, Any],
    fixtures: Path,
    blobs: Path,
    rng: np.random.Generator,
    land_cover: Sequence[GroupLandCover] = (),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """v200 (2021) and v100 (2020) items of the 3° tiles touching the regions, and manifest entries;
    ``land_cover`` is written over the real tile's windows where the groups lie."""
    res = 1 / 12000
    items, entries = [], []
    with rasterio.open(fixtures / WORLDCOVER_FIXTURE) as src:
        for (lat, lon), bounds in _cell_bounds(regions=regions, size=3).items():
            tile = f"{_ns(lat)}{_ew(lon)}"
            limit = (lon, lat, lon + 3, lat + 3)
            transform, h, w = _crop(bounds=bounds, origin=(lon, lat + 3), res=(res, res), limit=limit)
            if max(h, w) > MAX_WORLDCOVER_PX:
                raise ValueError(
                    f"the samples in WorldCover tile {tile} span {h}x{w} px at 1/12000° (at most "
                    f"{MAX_WORLDCOVER_PX}); keep samples of one 3° tile within "
                    f"{MAX_WORLDCOVER_PX / 12000:.0f}° of each other, or generate them in separate catalogues"
                )
            for version, year, pv in (("v200", 2021, "2.0.0"), ("v100", 2020, "1.0.0")):
                item_id = f"ESA_WorldCover_10m_{year}_{version}_{tile}"
                r0, c0 = int(rng.integers(2000, 30000)), int(rng.integers(2000, 30000))
                # A crop wider than the usual few km still has to fit inside the 36000 px fixture.
                r0, c0 = min(r0, src.height - h), min(c0, src.width - w)
                data = _paste_land_cover(
                    data=src.read(1, window=Window(c0, r0, w, h)), transform=transform, land_cover=land_cover
                )
                rel = f"{version}/{year}/map/{item_id}_Map.tif"
                write_cog(path=blobs / rel, data=data, epsg=4326, transform=transform, nodata=0)
                item = clone_item(
                    template=template,
                    item_id=item_id,
                    geometry=geojson_polygon(box(*limit)),
                    properties={
                        "grid:code": f"ESAWORLDCOVER-{tile}",
                        "esa_worldcover:product_tile": tile,
                        "esa_worldcover:product_version": pv,
                        "start_datetime": f"{year}-01-01T00:00:00Z",
                        "end_datetime": f"{year}-12-31T23:59:59Z",
                    },
                    hrefs={},
                    replace={"v200/2021/": f"{version}/{year}/", "_2021_v200_": f"_{year}_{version}_"},
                )
                item["assets"]["map"]["proj:shape"] = [h, w]
                item["assets"]["map"]["proj:transform"] = list(transform)[:6]
                items.append(item)
                entries.append(
                    {"id": item_id, "product_version": pv, "cog_bounds_lonlat": _bounds(transform, h, w)}
                )
    return items, entries


def _bounds(transform: Affine, h: int, w: int) -> list[float]:
    return [transform.c, transform.f + h * transform.e, transform.c + w * transform.a, transform.f]


def nasadem_items(
    *, regions: list[Region], template: dict[str, Any], fixtures: Path, blobs: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """NASADEM items (1° cells, int16) touching the regions, and manifest entries."""
    res = 1 / 3600
    with rasterio.open(fixtures / NASADEM_FIXTURE) as src:
        dem = src.read(1)
    items, entries = [], []
    for (lat, lon), bounds in _cell_bounds(regions=regions, size=1).items():
        item_id = f"NASADEM_HGT_{_ns(lat).lower()}{_ew(lon).lower()}"
        half = res / 2
        limit = (lon - half, lat - half, lon + 1 + half, lat + 1 + half)
        transform, h, w = _crop(
            bounds=bounds, origin=(lon - half, lat + 1 + half), res=(res, res), limit=limit
        )
        reps = (math.ceil(h / dem.shape[0]) + 1, math.ceil(w / dem.shape[1]) + 1)
        tiled = np.block(
            [[dem if (i + j) % 2 == 0 else dem[::-1, ::-1] for j in range(reps[1])] for i in range(reps[0])]
        )
        data = (tiled[:h, :w].astype(np.int32) + (abs(lat * 7 + lon * 13) % 200)).astype(np.int16)
        rel = f"v001/{item_id}.tif"
        write_cog(path=blobs / rel, data=data, epsg=4326, transform=transform, nodata=-32768)
        item = clone_item(
            template=template,
            item_id=item_id,
            geometry=geojson_polygon(box(*limit)),
            properties={
                "proj:bbox": [float(v) for v in _bounds(transform, h, w)],
                "proj:shape": [h, w],
                "proj:transform": [*list(transform)[:6], 0.0, 0.0, 1.0],
            },
            hrefs={},
        )
        items.append(item)
        entries.append({"id": item_id, "cog_bounds_lonlat": _bounds(transform, h, w)})
    return items, entries


def _lon_spacing(lat: int) -> float:
    band = abs(lat + 0.5)
    return 1.0 if band < 50 else 1.5 if band < 60 else 2.0 if band < 70 else 3.0


def copdem_items(
    *, regions: list[Region], template: dict[str, Any], fixtures: Path, blobs: Path, rng: np.random.Generator
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Copernicus DEM GLO-30 items (1° cells, float32) touching the regions, and manifest entries."""
    ry = 1 / 3600
    items, entries = [], []
    with rasterio.open(fixtures / COPDEM_FIXTURE) as src:
        for (lat, lon), bounds in _cell_bounds(regions=regions, size=1).items():
            name = f"{_ns(lat)}_00_{_ew(lon)}_00"
            item_id = f"Copernicus_DSM_COG_10_{name}_DEM"
            rx = _lon_spacing(lat) / 3600
            origin = (lon - rx / 2, lat + 1 + ry / 2)
            limit = (lon - rx / 2, lat - ry / 2, lon + 1 - rx / 2, lat + 1 - ry / 2)
            transform, h, w = _crop(bounds=bounds, origin=origin, res=(rx, ry), limit=limit)
            # max(1, …): a crop spanning the whole 1° cell (far-apart samples) reads the whole fixture.
            r0, c0 = int(rng.integers(0, max(1, 3600 - h))), int(rng.integers(0, max(1, 3600 - w)))
            data = src.read(1, window=Window(c0, r0, w, h)).astype(np.float32)
            rel = f"COP30_hh/{item_id}.tif"
            write_cog(path=blobs / rel, data=data, epsg=4326, transform=transform, nodata=None)
            item = clone_item(
                template=template,
                item_id=item_id,
                geometry=geojson_polygon(box(*limit)),
                properties={"proj:shape": [h, w], "proj:transform": list(transform)[:6]},
                hrefs={},
                replace={"S90_00_W180_00": name},
            )
            items.append(item)
            entries.append({"id": item_id, "cog_bounds_lonlat": _bounds(transform, h, w)})
    return items, entries
