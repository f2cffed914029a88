"""OpenStreetMap raster: the 30 raster categories burned onto a tile's 2.5 m grid (data spec §5.3).

Input: the per-tile GeoParquet that :func:`olmoearth_data.osm.extract.extract_osm` writes (geometries in
lon/lat) and the input's extent (``extent.json``). Each geometry is projected into the tile's UTM CRS
with pyproj and burned with ``rasterio.features.rasterize`` into ``[30, 1024, 1024]`` uint8 (0/1), band
order :data:`~olmoearth_data.modalities.OSM_RASTER_CATEGORIES`, row 0 at the tile's north edge.

Burn rules (ours; the reference used its own scanline/Bresenham code with the same intent):

* **Polygons** set the pixels whose *centre* lies inside (holes stay 0) — GDAL's default rule, so a
  building is not inflated by a pixel ring on every side.
* **Lines** set every pixel the line passes through (``all_touched``), so a road is an unbroken
  4-connected trace whatever its angle (a centre rule would drop pixels of diagonal lines).
* **Points** set the one pixel that contains them (``all_touched``; a point touches one pixel).

Presence: the modality is present when the input's extent intersects the tile (a regional extract
covers tiles at its edge only partly; the covered fraction goes to ``extra["osm_coverage"]``); a tile
beyond the extent is missing with ``OUTSIDE_COVERAGE``. A present tile with no features is valid
"nothing mapped here" data (the reference dropped all-zero rasters; see docs/corpus-schema.md).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.features import rasterize
from shapely.geometry import box

from olmoearth_data.grid import Tile
from olmoearth_data.missing import MissingReason
from olmoearth_data.modalities import OSM_RASTER_CATEGORIES, ModalitySpec
from olmoearth_data.osm.extract import read_tile_features
from olmoearth_data.results import ModalityResult

#: Pixel size of the OSM raster, metres (1024 × 1024 per tile).
OSM_PIXEL_SIZE_M = 2.5


@dataclass(frozen=True)
class OsmInput:
    """An OSM extraction and the lon/lat area its source file covers.

    Attributes:
        raster_dir: the ``raster/`` folder of :func:`~olmoearth_data.osm.extract.extract_osm`.
        bbox: ``(west, south, east, north)`` EPSG:4326 degrees the input covers.
    """

    raster_dir: Path
    bbox: tuple[float, float, float, float]

    @classmethod
    def from_extraction(
        cls, out_dir: Path | str, *, bbox: tuple[float, float, float, float] | None = None
    ) -> OsmInput:
        """The extraction in ``out_dir``; ``bbox`` overrides (or supplies) the extent of ``extent.json``."""
        out_dir = Path(out_dir)
        if bbox is None:
            extent = out_dir / "extent.json"
            stored = json.loads(extent.read_text())["bbox"] if extent.exists() else None
            if stored is None:
                raise ValueError(
                    f"OSM extraction {out_dir} records no extent (no extent.json, or a null bbox: the input "
                    "file's header declares none); pass bbox=(west, south, east, north) explicitly"
                )
            bbox = tuple(stored)
        return cls(raster_dir=out_dir / "raster", bbox=tuple(float(v) for v in bbox))  # type: ignore[arg-type]

    def coverage(self, tile: Tile) -> float:
        """Fraction of ``tile`` inside the input's extent (0 … 1), measured in the tile's CRS."""
        to_tile = Transformer.from_crs(4326, tile.epsg, always_xy=True)
        extent = shapely.segmentize(box(*self.bbox), 0.01)  # densified: edges curve in UTM
        projected = shapely.transform(
            extent, lambda xy: np.column_stack(to_tile.transform(xy[:, 0], xy[:, 1]))
        )
        tile_poly = tile.polygon()
        return float(projected.intersection(tile_poly).area / tile_poly.area)


def rasterise_features(*, features: pa.Table, tile: Tile) -> np.ndarray:
    """Burn the lon/lat ``features`` (``category`` + WKB ``geometry`` columns) onto ``tile``.

    Returns ``[30, 1024, 1024]`` uint8 0/1 in the tile's UTM CRS, 2.5 m pixels, transform
    ``(2.5, 0, x0, 0, −2.5, y0)`` with ``(x0, y0)`` the tile's top-left corner. Categories outside
    the 30 are ignored.
    """
    n = round(2560 / OSM_PIXEL_SIZE_M)
    out = np.zeros((len(OSM_RASTER_CATEGORIES), n, n), dtype=np.uint8)
    if features.num_rows == 0:
        return out
    x0, _, _, y1 = tile.bounds
    transform = Affine(OSM_PIXEL_SIZE_M, 0.0, x0, 0.0, -OSM_PIXEL_SIZE_M, y1)
    to_tile = Transformer.from_crs(4326, tile.epsg, always_xy=True)
    geoms = shapely.from_wkb(features.column("geometry").to_numpy(zero_copy_only=False))
    projected = shapely.transform(geoms, lambda xy: np.column_stack(to_tile.transform(xy[:, 0], xy[:, 1])))
    band_of = {c: i for i, c in enumerate(OSM_RASTER_CATEGORIES)}
    areas: dict[int, list] = defaultdict(list)
    traces: dict[int, list] = defaultdict(list)
    for category, geom in zip(features.column("category").to_pylist(), projected, strict=True):
        band = band_of.get(category)
        if band is None or geom is None or geom.is_empty:
            continue
        (areas if shapely.get_dimensions(geom) == 2 else traces)[band].append(geom)
    for band in set(areas) | set(traces):
        if areas.get(band):
            out[band] = rasterize(areas[band], out=out[band], transform=transform, all_touched=False)
        if traces.get(band):
            out[band] = rasterize(traces[band], out=out[band], transform=transform, all_touched=True)
    return out


def materialise_osm_raster(*, tile: Tile, spec: ModalitySpec, osm: OsmInput | None) -> ModalityResult:
    """The OSM raster of one tile: arrays ``{"2_5m": [1, 30, 1024, 1024]}`` uint8, presence and reason.

    ``osm`` None (no OSM input configured for the build) and a tile outside the input's extent are
    missing with ``OUTSIDE_COVERAGE``.
    """
    bs = spec.bandsets[0]
    n = bs.pixels_per_tile
    empty = np.zeros((1, len(bs.bands), n, n), dtype=spec.dtype)
    coverage = 0.0 if osm is None else osm.coverage(tile)
    if coverage <= 0.0:
        reason = np.array([int(MissingReason.OUTSIDE_COVERAGE)], dtype=np.uint8)
        return ModalityResult(
            arrays={bs.name: empty}, present=np.zeros(1, bool), reason=reason, item_ids=[[]]
        )
    features = read_tile_features(raster_dir=osm.raster_dir, tile_id=tile.id)
    data = rasterise_features(features=features, tile=tile)
    return ModalityResult(
        arrays={bs.name: data[None]},
        present=np.ones(1, dtype=bool),
        reason=np.array([int(MissingReason.PRESENT)], dtype=np.uint8),
        item_ids=[[]],
        extra={"osm_coverage": coverage, "osm_features": features.num_rows},
    )
