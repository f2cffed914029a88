"""Rendering and writing every item of one granule group: COGs, SAFE metadata, STAC item, manifest entry.

For each datatake of the group's plan (:mod:`~olmoearth_twin.catalog.schedule`), the datatake's fields
are made once on the group grid (:mod:`~olmoearth_twin.catalog.scene`) and every granule the swath
reaches gets one product: its COG crop, its five metadata files and its PC-shaped item (geometry =
granule footprint ∩ swath, properties measured from the SCL actually written).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from affine import Affine
from pyproj import Transformer
from shapely import wkt
from shapely.geometry import Polygon, shape
from shapely.geometry.polygon import orient

from olmoearth_data.periods import monthly_periods
from olmoearth_twin.catalog import metadata_xml as mx
from olmoearth_twin.catalog.bands import BOA_ADD_OFFSET_DN, RESOLUTION_M
from olmoearth_twin.catalog.cogs import write_cog
from olmoearth_twin.catalog.groups import GranuleCrop, GranuleGroup
from olmoearth_twin.catalog.scene import (
    Ground,
    SceneFields,
    Sources,
    SwathEdge,
    make_ground,
    make_scene_fields,
    render_granule,
    solar_angles,
    valid_mask,
)
from olmoearth_twin.catalog.schedule import Acquisition, plan_acquisitions
from olmoearth_twin.catalog.stac_item import ProductPaths, build_item, item_id, product_names, product_paths


def _round(value: float) -> float:
    return float(round(value, 6))


class GroupWriter:
    """Plans, renders and writes every item of one granule group.

    Args:
        group: the granules and samples.
        rng: the group's generator (plan, ground, swath edge are drawn from it in that order).
        sources: the real fixture bands.
        template: the real PC item every item is shaped after.
        out: the container folder (``<blobs>/<account>/<container>``).
        blob_base: ``https://<account>.blob.core.windows.net/<container>``.
    """

    def __init__(
        self,
        *,
        group: GranuleGroup,
        rng: np.random.Generator,
        sources: Sources,
        template: dict[str, Any],
        out: Path,
        blob_base: str,
    ) -> None:
        self.group, self.rng, self.template, self.out, self.blob_base = group, rng, template, out, blob_base
        self.to_lonlat = Transformer.from_crs(group.epsg, 4326, always_xy=True)
        cx, cy = (group.bounds[0] + group.bounds[2]) / 2, (group.bounds[1] + group.bounds[3]) / 2
        self.lon, self.lat = self.to_lonlat.transform(cx, cy)
        self.ground: Ground = make_ground(
            rng=rng, sources=sources, shape=group.shape, anchor=group.pixel_box(tile=group.samples[0].tile)
        )
        periods = [p for s in group.samples for p in monthly_periods(centre=s.centre)]
        self.acquisitions = plan_acquisitions(rng=rng, periods=periods, lon=self.lon)
        # The secondary orbit's swath edge: nearly north-south, through a random sample tile.
        tile = group.samples[int(rng.integers(len(group.samples)))].tile
        tx, ty = tile.centre_xy
        self.edge_point = (tx + rng.uniform(-640, 640), ty + rng.uniform(-640, 640))
        angle = math.radians(rng.uniform(8, 22) * rng.choice([-1, 1]))
        side = float(rng.choice([-1.0, 1.0]))
        self.edge_normal = (side * math.cos(angle), -side * math.sin(angle))
        self.tiles_lonlat = {s.tile.id: s.tile.polygon_lonlat() for s in group.samples}

    def run(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        items, entries = [], []
        for acq in self.acquisitions:
            edge = None
            if acq.partial:
                jitter = float(np.random.default_rng(acq.seed).normal(0, 30))
                x0 = self.edge_point[0] + jitter * self.edge_normal[0]
                y0 = self.edge_point[1] + jitter * self.edge_normal[1]
                edge = SwathEdge(x0=x0, y0=y0, nx=self.edge_normal[0], ny=self.edge_normal[1])
            valid20 = valid_mask(edge=edge, bounds=self.group.bounds, res=20)
            scene = make_scene_fields(ground=self.ground, acq=acq, lat=self.lat, edge=edge, valid20=valid20)
            for crop in self.group.crops:
                result = self._granule(acq=acq, scene=scene, crop=crop)
                if result is not None:
                    items.append(result[0])
                    entries.append(result[1])
        return items, entries

    def _valid_polygon(self, crop: GranuleCrop, edge: SwathEdge | None) -> Polygon:
        footprint = crop.granule.polygon()
        if edge is None:
            return footprint
        far = 1e6
        dx, dy = -edge.ny, edge.nx  # along the edge
        half = Polygon(
            [
                (edge.x0 - dx * far, edge.y0 - dy * far),
                (edge.x0 + dx * far, edge.y0 + dy * far),
                (edge.x0 + dx * far + edge.nx * far, edge.y0 + dy * far + edge.ny * far),
                (edge.x0 - dx * far + edge.nx * far, edge.y0 - dy * far + edge.ny * far),
            ]
        )
        return footprint.intersection(half)

    def _granule(
        self, *, acq: Acquisition, scene: SceneFields, crop: GranuleCrop
    ) -> tuple[dict, dict] | None:
        valid_utm = self._valid_polygon(crop, scene.edge)
        if valid_utm.is_empty or valid_utm.area < 1.0:
            return None  # the swath misses this granule: PC has no product for it
        mgrs = crop.granule.mgrs
        arrays = render_granule(
            ground=self.ground, scene=scene, window=crop.window, bounds=crop.bounds, boa_offset=acq.boa_offset
        )
        names = product_names(acq=acq, mgrs=mgrs)
        paths = product_paths(acq=acq, mgrs=mgrs, names=names)
        xmin, _, _, ymax = crop.bounds
        for key, data in arrays.items():
            res = RESOLUTION_M[key]
            write_cog(
                path=self.out / paths.rasters[key],
                data=data,
                epsg=self.group.epsg,
                transform=Affine(res, 0.0, xmin, 0.0, -res, ymax),
            )
        lonlat = shapely.transform(valid_utm.segmentize(5000.0), self.to_lonlat.transform, interleaved=False)
        coords = [[round(x, 7), round(y, 7)] for x, y in orient(lonlat, sign=1.0).exterior.coords]
        geometry = {"type": "Polygon", "coordinates": [coords]}
        geom_shape = shape(geometry)
        bbox = [round(v, 7) for v in geom_shape.bounds]
        properties = self._properties(
            acq=acq,
            scl=arrays["SCL"],
            names=names,
            mgrs=mgrs,
            nodata_pct=100.0 * (1 - valid_utm.area / crop.granule.polygon().area),
        )
        stats = self._tile_stats(scl=arrays["SCL"], crop=crop)
        new_id = item_id(acq=acq, mgrs=mgrs)
        item = build_item(
            template=self.template,
            new_id=new_id,
            blob_base=self.blob_base,
            paths=paths,
            crop=crop.bounds,
            geometry=geometry,
            bbox=bbox,
            properties=properties,
        )
        self._write_metadata(acq=acq, names=names, paths=paths, crop=crop, item=item, coords=coords)
        tiles = [t for t, poly in self.tiles_lonlat.items() if poly.intersects(geom_shape)]
        entry = {
            "id": new_id,
            "datetime": properties["datetime"],
            "platform": acq.platform,
            "mgrs_tile": mgrs,
            "epsg": self.group.epsg,
            "relative_orbit": acq.relative_orbit,
            "eo:cloud_cover": properties["eo:cloud_cover"],
            "s2:processing_baseline": acq.baseline,
            "boa_add_offset": BOA_ADD_OFFSET_DN if acq.boa_offset else 0,
            "tiles": tiles,
            "cog_bounds": list(crop.bounds),
            "valid_polygon_utm": wkt.dumps(valid_utm, rounding_precision=3),
            "swath_edge": None
            if scene.edge is None
            else {"point": [scene.edge.x0, scene.edge.y0], "normal": [scene.edge.nx, scene.edge.ny]},
            "tile_stats": {t: v for t, v in stats.items() if t in tiles},
        }
        return item, entry

    def _properties(
        self, *, acq: Acquisition, scl: np.ndarray, names: mx.ProductNames, mgrs: str, nodata_pct: float
    ) -> dict[str, Any]:
        valid = scl != 0
        n = max(int(valid.sum()), 1)

        def pct(*classes: int) -> float:
            return _round(100.0 * float(np.isin(scl, classes).sum()) / n) if valid.any() else 0.0

        cloud = pct(8, 9, 10) if valid.any() else _round(acq.cloud_target)
        zenith, azimuth = solar_angles(lat=self.lat, when=acq.sensing)
        doy = acq.sensing.timetuple().tm_yday
        rho = 1.0 / (1.0 - 0.01673 * math.cos(0.0172 * (doy - 4))) ** 2
        properties = {
            "datetime": acq.sensing.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "platform": acq.platform,
            "proj:epsg": self.group.epsg,
            "instruments": ["msi"],
            "s2:mgrs_tile": mgrs,
            "constellation": "Sentinel 2",
            "s2:granule_id": names.granule_id,
            "eo:cloud_cover": cloud,
            "s2:datatake_id": names.datatake_id,
            "s2:product_uri": names.product_uri,
            "s2:datastrip_id": names.datastrip_id,
            "s2:product_type": "S2MSI2A",
            "sat:orbit_state": "descending",
            "s2:datatake_type": "INS-NOBS",
            "s2:generation_time": acq.generation.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
            "sat:relative_orbit": acq.relative_orbit,
            "s2:water_percentage": pct(6),
            "s2:mean_solar_zenith": zenith,
            "s2:mean_solar_azimuth": azimuth,
            "s2:processing_baseline": acq.baseline,
            "s2:snow_ice_percentage": pct(11),
            "s2:vegetation_percentage": pct(4),
            "s2:thin_cirrus_percentage": pct(10),
            "s2:cloud_shadow_percentage": pct(3),
            "s2:nodata_pixel_percentage": _round(nodata_pct),
            "s2:unclassified_percentage": pct(7),
            "s2:not_vegetated_percentage": pct(5),
            "s2:degraded_msi_data_percentage": _round(
                float(np.random.default_rng(acq.seed).uniform(0, 0.03))
            ),
            "s2:high_proba_clouds_percentage": pct(9),
            "s2:reflectance_conversion_factor": rho,
            "s2:medium_proba_clouds_percentage": pct(8),
            "s2:saturated_defective_pixel_percentage": pct(1),
        }
        return properties

    def _tile_stats(self, *, scl: np.ndarray, crop: GranuleCrop) -> dict[str, dict[str, float]]:
        xmin, _, _, ymax = crop.bounds
        stats = {}
        for sample in self.group.samples:
            txmin, tymin, txmax, tymax = sample.tile.bounds
            rows = slice(max(0, round((ymax - tymax) / 20)), max(0, round((ymax - tymin) / 20)))
            cols = slice(max(0, round((txmin - xmin) / 20)), max(0, round((txmax - xmin) / 20)))
            window = scl[rows, cols]
            total = round((tymax - tymin) / 20) * round((txmax - txmin) / 20)
            stats[sample.tile.id] = {
                "valid_fraction": _round(float((window != 0).sum()) / total),
                "cloud_fraction": _round(float(np.isin(window, (8, 9, 10)).sum()) / total),
            }
        return stats

    def _write_metadata(
        self,
        *,
        acq: Acquisition,
        names: mx.ProductNames,
        paths: ProductPaths,
        crop: GranuleCrop,
        item: dict[str, Any],
        coords: list[list[float]],
    ) -> None:
        xmin, ymin, xmax, ymax = crop.bounds
        latlon = [v for x, y in coords for v in (y, x)]
        shape_10m = (round((ymax - ymin) / 10), round((xmax - xmin) / 10))
        files = {
            "product-metadata": mx.product_metadata(
                acq=acq,
                names=names,
                cloud_cover=item["properties"]["eo:cloud_cover"],
                footprint_latlon=latlon,
                reflectance_conversion=item["properties"]["s2:reflectance_conversion_factor"],
            ),
            "granule-metadata": mx.tile_metadata(
                acq=acq,
                names=names,
                epsg=self.group.epsg,
                mgrs=crop.granule.mgrs,
                shape_10m=shape_10m,
                ulx=xmin,
                uly=ymax,
            ),
            "datastrip-metadata": mx.datastrip_metadata(acq=acq, names=names),
            "inspire-metadata": mx.inspire_metadata(names=names, bbox=item["bbox"]),
        }
        rel = [p[len(paths.safe) + 1 :] for p in [*paths.rasters.values(), *paths.metadata.values()]]
        files["safe-manifest"] = mx.safe_manifest(names=names, files=rel)
        for key, payload in files.items():
            target = self.out / paths.metadata[key]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(payload)
