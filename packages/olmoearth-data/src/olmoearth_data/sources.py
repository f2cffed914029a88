"""Source specs: where the pipeline gets each modality from. The model package never imports this.

A source says which catalogue (a STAC API, a footprint tile index, or OpenStreetMap), which
collection, which asset holds each band, how each band is resampled onto the tile grid, which query
filters and ordering apply, and under which licence the data is published.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from olmoearth_data.modalities import MODALITIES

#: Planetary Computer's STAC API, the default catalogue.
PLANETARY_COMPUTER_STAC_URL = "https://planetarycomputer.microsoft.com/api/stac/v1"


class SourceKind(StrEnum):
    STAC = "stac"  # a STAC API collection (Planetary Computer or its twin)
    TILE_INDEX = "tile_index"  # a GeoJSON footprint index over GeoTIFF tiles (canopy height, WorldCereal)
    OSM = "osm"  # OpenStreetMap vectors, rasterised by us


class Resampling(StrEnum):
    NEAREST = "nearest"
    BILINEAR = "bilinear"
    AVERAGE = "average"


class Compositing(StrEnum):
    FIRST_VALID = "first_valid"  # per pixel, first item (in source order) with data
    SINGLE = "single"  # static: mosaic of the items covering the tile


@dataclass(frozen=True)
class BandSource:
    """Where one band of a modality comes from."""

    band: str
    asset: str
    resampling: Resampling


@dataclass(frozen=True)
class SourceSpec:
    """How the pipeline fetches one modality.

    Attributes:
        modality: the :class:`~olmoearth_data.modalities.ModalitySpec` name this source fills.
        kind: STAC collection, tile index or OSM.
        collection: STAC collection id (or tile-index name).
        bands: per band, the asset key and resampling method.
        query: STAC ``query`` filters applied to every search.
        filter: a CQL2-JSON ``filter`` applied to every search (for operators the query extension of
            some servers rejects, e.g. ``in``).
        sort_keys: item properties to order by (ascending), ties broken by item id.
        compositing: how items of one period are merged.
        licence, attribution: for the data-licence note and corpus attributes.
        requires_account: Planetary Computer needs a subscription key to sign these assets.
        url: catalogue URL; ``None`` means the run's configured catalogue.
        read_nodata: the source files' nodata value, used while reading and resampling (so nodata
            pixels never enter a bilinear kernel) and then mapped to the modality's stored nodata;
            ``None``: the stored nodata is the source's (e.g. 0 for Sentinel-2).
        optional_assets: assets an item may lack and still be used; the bands they hold are nodata
            for that item (Landsat L2SR products have no surface temperature ``lwir11``) and fill
            independently in a composite, from the next item that has them
            (:mod:`olmoearth_data.composite.first_valid`).
        regional: the product covers only part of the world by design (CDL: CONUS), so a tile with no
            item at all is outside its coverage rather than a gap.
        item_transform: a per-item adjustment of the pixels before merging, by name
            (:data:`olmoearth_data.materialise.bandsets.ITEM_TRANSFORMS`; Sentinel-2 harmonisation).
        composite_transform: a per-composite adjustment after merging, by name
            (:data:`olmoearth_data.materialise.bandsets.COMPOSITE_TRANSFORMS`; Sentinel-1 dB, WorldCereal's
            non-crop values).
        nearest_year: an annual product of which only the year nearest the sample's centre is used (CDL).
        native_mosaic: files mosaicked at their native resolution, then averaged onto the tile grid in
            one warp (canopy height's 1.19 m quadkey tiles), instead of the first-valid merge.
    """

    modality: str
    kind: SourceKind
    collection: str
    bands: tuple[BandSource, ...]
    licence: str
    attribution: str
    query: dict[str, Any] = field(default_factory=dict)
    filter: dict[str, Any] | None = None
    sort_keys: tuple[str, ...] = ()
    compositing: Compositing = Compositing.FIRST_VALID
    requires_account: bool = False
    url: str | None = None
    read_nodata: float | int | None = None
    optional_assets: tuple[str, ...] = ()
    regional: bool = False
    item_transform: str | None = None
    composite_transform: str | None = None
    nearest_year: bool = False
    native_mosaic: bool = False

    def __post_init__(self) -> None:
        spec = MODALITIES[self.modality]
        if tuple(b.band for b in self.bands) != spec.bands:
            raise ValueError(
                f"source {self.collection}: bands {[b.band for b in self.bands]} do not match "
                f"modality {self.modality} bands {list(spec.bands)}"
            )

    def asset_for(self, band: str) -> str:
        return next(b.asset for b in self.bands if b.band == band)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _bands(pairs: list[tuple[str, str]], resampling: Resampling) -> tuple[BandSource, ...]:
    return tuple(BandSource(band, asset, resampling) for band, asset in pairs)


_S2_BANDS = ["B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12", "B01", "B09"]

#: Default sources, Planetary Computer first, by modality name.
SOURCES: dict[str, SourceSpec] = {
    "sentinel2_l2a": SourceSpec(
        modality="sentinel2_l2a",
        kind=SourceKind.STAC,
        collection="sentinel-2-l2a",
        bands=_bands([(b, b) for b in _S2_BANDS], Resampling.BILINEAR),
        sort_keys=("eo:cloud_cover",),
        licence="Copernicus Sentinel data terms",
        attribution="Contains modified Copernicus Sentinel data",
        item_transform="harmonise_sentinel2",
    ),
    "sentinel1": SourceSpec(
        modality="sentinel1",
        kind=SourceKind.STAC,
        collection="sentinel-1-rtc",
        bands=_bands([("vv", "vv"), ("vh", "vh")], Resampling.BILINEAR),
        query={"sar:instrument_mode": {"eq": "IW"}, "sar:polarizations": {"eq": ["VV", "VH"]}},
        # The reference took the API's order, which is not stable; we order by time, then id.
        sort_keys=("datetime",),
        requires_account=True,
        read_nodata=-32768.0,
        licence="CC-BY-4.0 (Sentinel-1 RTC, Microsoft/Catalyst); Copernicus Sentinel data terms",
        attribution=(
            "Contains modified Copernicus Sentinel data; RTC processing by Microsoft Planetary Computer"
        ),
        composite_transform="linear_to_db",
    ),
    "landsat_l2": SourceSpec(
        modality="landsat_l2",
        kind=SourceKind.STAC,
        collection="landsat-c2-l2",
        bands=_bands(
            [
                ("B1", "coastal"),
                ("B2", "blue"),
                ("B3", "green"),
                ("B4", "red"),
                ("B5", "nir08"),
                ("B6", "swir16"),
                ("B7", "swir22"),
                ("B10", "lwir11"),
            ],
            Resampling.BILINEAR,
        ),
        # CQL2 rather than `query` `in`: stac-fastapi 7 (the twin) rejects `in`; PC supports both.
        filter={"op": "in", "args": [{"property": "platform"}, ["landsat-8", "landsat-9"]]},
        sort_keys=("eo:cloud_cover",),
        optional_assets=("lwir11",),
        licence="Public domain (USGS)",
        attribution="Landsat data courtesy of the U.S. Geological Survey",
    ),
    "worldcover": SourceSpec(
        modality="worldcover",
        kind=SourceKind.STAC,
        collection="esa-worldcover",
        bands=_bands([("B1", "map")], Resampling.NEAREST),
        query={"esa_worldcover:product_version": {"eq": "2.0.0"}},
        compositing=Compositing.SINGLE,
        licence="CC-BY-4.0",
        attribution="© ESA WorldCover project 2021 / Contains modified Copernicus Sentinel data (2021)",
    ),
    "srtm": SourceSpec(
        modality="srtm",
        kind=SourceKind.STAC,
        collection="nasadem",
        bands=_bands([("srtm", "elevation")], Resampling.NEAREST),
        compositing=Compositing.SINGLE,
        licence="Public domain (NASA)",
        attribution="NASADEM, NASA JPL",
    ),
    "cdl": SourceSpec(
        modality="cdl",
        kind=SourceKind.STAC,
        collection="usda-cdl",
        bands=_bands([("cdl", "cropland")], Resampling.NEAREST),
        query={"usda_cdl:type": {"eq": "cropland"}},
        compositing=Compositing.SINGLE,
        regional=True,
        licence="Public domain (USDA NASS)",
        attribution="USDA National Agricultural Statistics Service Cropland Data Layer",
        nearest_year=True,
    ),
    "wri_canopy_height_map": SourceSpec(
        modality="wri_canopy_height_map",
        kind=SourceKind.TILE_INDEX,
        collection="wri-canopy-height",
        bands=_bands([("B1", "chm")], Resampling.AVERAGE),
        compositing=Compositing.SINGLE,
        licence="CC-BY-4.0",
        attribution="High Resolution Canopy Height Maps by WRI and Meta",
        native_mosaic=True,
    ),
    "worldcereal": SourceSpec(
        modality="worldcereal",
        kind=SourceKind.TILE_INDEX,
        collection="worldcereal-2021",
        bands=_bands([(p, p) for p in MODALITIES["worldcereal"].bands], Resampling.NEAREST),
        compositing=Compositing.SINGLE,
        licence="CC-BY-4.0",
        attribution="ESA WorldCereal 2021 (Van Tricht et al., 2023)",
        composite_transform="worldcereal_values",
    ),
    "openstreetmap_raster": SourceSpec(
        modality="openstreetmap_raster",
        kind=SourceKind.OSM,
        collection="openstreetmap",
        bands=_bands([(c, c) for c in MODALITIES["openstreetmap_raster"].bands], Resampling.NEAREST),
        compositing=Compositing.SINGLE,
        licence="ODbL-1.0",
        attribution="© OpenStreetMap contributors",
    ),
}


def get_source(modality: str) -> SourceSpec:
    """The default source of ``modality``; raises with the list of modalities that have one."""
    try:
        return SOURCES[modality]
    except KeyError:
        raise KeyError(
            f"no source is configured for modality {modality!r} (the reference's Level-1 `landsat` is not "
            f"on Planetary Computer; use `landsat_l2`). Modalities with sources: {sorted(SOURCES)}"
        ) from None
