"""Modality specs: what the model needs to know about each input, independent of where it comes from.

This is the bottom layer of the project. The sampler, the pipeline, the cube writer, the loader and
the model all read these specs; nothing here imports any other module of the project.

A *modality* (e.g. ``sentinel2_l2a``) is a list of *bandsets*. Each bandset is stored at its own
pixel size, always a power of two off 10 m (2.5, 10, 20, 40 m), and becomes one token per patch and
timestep in the model. Names and band orders are the reference's identifiers
(``docs/recipe.md`` §1.2); ``landsat_l2`` is ours (Planetary Computer serves Landsat
Collection 2 Level-2, not the Level-1 product the reference used).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

#: Side of a tile in metres (256 px at 10 m).
TILE_SIZE_M = 2560.0
#: Pixel size of the token grid every bandset is brought to for the model, in metres.
BASE_PIXEL_SIZE_M = 10.0
#: Number of monthly periods of a multitemporal modality.
NUM_PERIODS = 12


class Temporal(StrEnum):
    """How a modality varies in time."""

    MONTHLY = "monthly"  # 12 × 30-day composites
    STATIC = "static"  # one layer per tile


class Role(StrEnum):
    """What the model may do with a modality."""

    OBSERVATION = "observation"  # encodable (and decodable)
    MAP = "map"  # derived map: decode-only, never enters the encoder


@dataclass(frozen=True)
class BandSet:
    """A group of bands stored together at one pixel size; one token per patch and timestep.

    Attributes:
        bands: band names in storage and model order.
        pixel_size_m: storage pixel size in metres; one of 2.5, 10, 20, 40.
    """

    bands: tuple[str, ...]
    pixel_size_m: float

    def __post_init__(self) -> None:
        ratio = self.pixel_size_m / BASE_PIXEL_SIZE_M
        if ratio <= 0 or not math.log2(ratio).is_integer():
            raise ValueError(
                f"bandset {self.bands}: pixel size {self.pixel_size_m} m is not a power of two off 10 m"
            )
        if not self.bands:
            raise ValueError("a bandset needs at least one band")

    @property
    def name(self) -> str:
        """Group name in the corpus, from the pixel size: ``10m``, ``20m``, ``40m``, ``2_5m``."""
        return f"{self.pixel_size_m:g}m".replace(".", "_")

    @property
    def pixels_per_tile(self) -> int:
        """Pixels along one side of a 2560 m tile at this bandset's pixel size."""
        return round(TILE_SIZE_M / self.pixel_size_m)

    @property
    def scale_to_base(self) -> float:
        """Storage pixel size over 10 m: 2 for 20 m (upsample ×2), 0.25 for 2.5 m (pool 4×4)."""
        return self.pixel_size_m / BASE_PIXEL_SIZE_M


@dataclass(frozen=True)
class ModalitySpec:
    """Everything the model and the corpus schema need to know about one modality.

    Attributes:
        name: reference identifier, e.g. ``sentinel2_l2a``.
        bandsets: bandsets in model order; the modality's band order is their concatenation.
        dtype: numpy dtype name of the stored pixels.
        nodata: stored value of a pixel with no data (``None``: every value is valid; ``"nan"`` for
            float NaN). A pixel is missing when all bands of its bandset equal ``nodata``.
        temporal: monthly (12 periods) or static.
        role: observation (encodable) or map (decode-only).
        units: physical units of the stored values.
        description: one line for people.
    """

    name: str
    bandsets: tuple[BandSet, ...]
    dtype: str
    nodata: int | float | str | None
    temporal: Temporal
    role: Role
    units: str
    description: str
    band_units: dict[str, str] = field(default_factory=dict)

    @property
    def bands(self) -> tuple[str, ...]:
        """All bands in model order (bandsets concatenated)."""
        return tuple(b for bs in self.bandsets for b in bs.bands)

    @property
    def num_bands(self) -> int:
        return len(self.bands)

    @property
    def num_bandsets(self) -> int:
        return len(self.bandsets)

    @property
    def is_multitemporal(self) -> bool:
        return self.temporal is Temporal.MONTHLY

    @property
    def is_map(self) -> bool:
        return self.role is Role.MAP

    @property
    def num_timesteps(self) -> int:
        """Periods stored per sample: 12 for monthly modalities, 1 for static ones."""
        return NUM_PERIODS if self.is_multitemporal else 1

    def bandset_band_indices(self) -> list[list[int]]:
        """For each bandset, the positions of its bands in :attr:`bands`."""
        out, start = [], 0
        for bs in self.bandsets:
            out.append(list(range(start, start + len(bs.bands))))
            start += len(bs.bands)
        return out

    def bandset(self, name: str) -> BandSet:
        """The bandset called ``name`` (e.g. ``"20m"``)."""
        for bs in self.bandsets:
            if bs.name == name:
                return bs
        raise KeyError(f"{self.name} has no bandset {name!r}; it has {[b.name for b in self.bandsets]}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON/YAML serialisable) that :func:`modality_from_dict` reads back."""
        d = asdict(self)
        d["temporal"] = self.temporal.value
        d["role"] = self.role.value
        d["bandsets"] = [{"bands": list(bs.bands), "pixel_size_m": bs.pixel_size_m} for bs in self.bandsets]
        return d


def modality_from_dict(d: dict[str, Any]) -> ModalitySpec:
    """Inverse of :meth:`ModalitySpec.to_dict`."""
    return ModalitySpec(
        name=d["name"],
        bandsets=tuple(BandSet(tuple(b["bands"]), float(b["pixel_size_m"])) for b in d["bandsets"]),
        dtype=d["dtype"],
        nodata=d["nodata"],
        temporal=Temporal(d["temporal"]),
        role=Role(d["role"]),
        units=d["units"],
        description=d["description"],
        band_units=dict(d.get("band_units", {})),
    )


_S2 = ModalitySpec(
    name="sentinel2_l2a",
    bandsets=(
        BandSet(("B02", "B03", "B04", "B08"), 10.0),
        BandSet(("B05", "B06", "B07", "B8A", "B11", "B12"), 20.0),
        BandSet(("B01", "B09"), 40.0),
    ),
    dtype="uint16",
    nodata=0,
    temporal=Temporal.MONTHLY,
    role=Role.OBSERVATION,
    units="surface reflectance × 10000 (harmonised to processing baseline < 04.00)",
    description="Sentinel-2 L2A monthly first-valid composite, least cloudy scene first",
)

_S1 = ModalitySpec(
    name="sentinel1",
    bandsets=(BandSet(("vv", "vh"), 10.0),),
    dtype="float32",
    nodata="nan",
    temporal=Temporal.MONTHLY,
    role=Role.OBSERVATION,
    units="dB (10·log10 of RTC gamma0 linear power, floored at 1e-10)",
    description="Sentinel-1 IW RTC monthly first-valid composite, VV and VH",
)

_LANDSAT_L1 = ModalitySpec(
    name="landsat",
    bandsets=(
        BandSet(("B8",), 10.0),
        BandSet(("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B9", "B10", "B11"), 20.0),
    ),
    dtype="uint16",
    nodata=0,
    temporal=Temporal.MONTHLY,
    role=Role.OBSERVATION,
    units="Landsat Collection 2 Level-1 digital numbers",
    description="Landsat 8/9 OLI-TIRS Level-1 monthly composite (the reference's; not on Planetary Computer)",
)

_LANDSAT_L2 = ModalitySpec(
    name="landsat_l2",
    bandsets=(BandSet(("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B10"), 20.0),),
    dtype="uint16",
    nodata=0,
    temporal=Temporal.MONTHLY,
    role=Role.OBSERVATION,
    units="Collection 2 Level-2 scaled integers (SR: ×2.75e-5 −0.2; B10 ST: ×0.00341802 +149 K)",
    description="Landsat 8/9 Collection 2 Level-2 surface reflectance + surface temperature, monthly",
)

_WORLDCOVER = ModalitySpec(
    name="worldcover",
    bandsets=(BandSet(("B1",), 10.0),),
    dtype="uint8",
    nodata=0,
    temporal=Temporal.STATIC,
    role=Role.MAP,
    units="ESA WorldCover class code (10..100)",
    description="ESA WorldCover 2021 v200 land cover",
)

_SRTM = ModalitySpec(
    name="srtm",
    bandsets=(BandSet(("srtm",), 10.0),),
    dtype="int16",
    nodata=-32768,
    temporal=Temporal.STATIC,
    role=Role.MAP,
    units="metres above the EGM96 geoid",
    description="Elevation (reference: SRTM 1″; default source here: NASADEM, its reprocessing)",
)

OSM_RASTER_CATEGORIES: tuple[str, ...] = (
    "aerialway_pylon", "aerodrome", "airstrip", "amenity_fuel", "building", "chimney",
    "communications_tower", "crane", "flagpole", "fountain", "generator_wind", "helipad", "highway",
    "leisure", "lighthouse", "obelisk", "observatory", "parking", "petroleum_well", "power_plant",
    "power_substation", "power_tower", "river", "runway", "satellite_dish", "silo", "storage_tank",
    "taxiway", "water_tower", "works",
)  # fmt: skip

_OSM = ModalitySpec(
    name="openstreetmap_raster",
    bandsets=(BandSet(OSM_RASTER_CATEGORIES, 2.5),),
    dtype="uint8",
    nodata=None,
    temporal=Temporal.STATIC,
    role=Role.MAP,
    units="presence (0/1)",
    description="30 OpenStreetMap feature categories rasterised at 2.5 m",
)

_CHM = ModalitySpec(
    name="wri_canopy_height_map",
    bandsets=(BandSet(("B1",), 10.0),),
    dtype="uint8",
    nodata=255,
    temporal=Temporal.STATIC,
    role=Role.MAP,
    units="metres",
    description="WRI/Meta global canopy height, averaged to 10 m",
)

_CDL = ModalitySpec(
    name="cdl",
    bandsets=(BandSet(("cdl",), 10.0),),
    dtype="uint8",
    nodata=0,
    temporal=Temporal.STATIC,
    role=Role.MAP,
    units="USDA NASS Cropland Data Layer class id",
    description="USDA Cropland Data Layer (CONUS only), year nearest the centre date",
)

WORLDCEREAL_PRODUCTS: tuple[str, ...] = tuple(
    f"{p}-classification"
    for p in (
        "tc-annual-temporarycrops", "tc-maize-main-irrigation", "tc-maize-main-maize",
        "tc-maize-second-irrigation", "tc-maize-second-maize", "tc-springcereals-springcereals",
        "tc-wintercereals-irrigation", "tc-wintercereals-wintercereals",
    )
)  # fmt: skip

_WORLDCEREAL = ModalitySpec(
    name="worldcereal",
    bandsets=(BandSet(WORLDCEREAL_PRODUCTS, 10.0),),
    dtype="uint8",
    nodata=255,
    temporal=Temporal.STATIC,
    role=Role.MAP,
    units="0 (not this crop) or 100 (this crop)",
    description="ESA WorldCereal 2021 v100, 8 classification products, overlapping zones merged",
)

#: Every modality this project knows, by name.
MODALITIES: dict[str, ModalitySpec] = {
    m.name: m
    for m in (_S2, _S1, _LANDSAT_L1, _LANDSAT_L2, _WORLDCOVER, _SRTM, _OSM, _CHM, _CDL, _WORLDCEREAL)
}

#: Named modality sets. ``v1`` is exactly the reference's nine (model parity); ``default`` is what the
#: corpus is built with from Planetary Computer (Landsat Level-2 in place of Level-1).
MODALITY_SETS: dict[str, tuple[str, ...]] = {
    "v1": (
        "sentinel2_l2a", "sentinel1", "landsat", "worldcover", "srtm", "openstreetmap_raster",
        "wri_canopy_height_map", "cdl", "worldcereal",
    ),
    "default": (
        "sentinel2_l2a", "sentinel1", "landsat_l2", "worldcover", "srtm", "openstreetmap_raster",
        "wri_canopy_height_map", "cdl", "worldcereal",
    ),
    "s2": ("sentinel2_l2a",),
}  # fmt: skip


def get_modality(name: str) -> ModalitySpec:
    """The registered modality called ``name``."""
    try:
        return MODALITIES[name]
    except KeyError:
        raise KeyError(f"unknown modality {name!r}; known: {sorted(MODALITIES)}") from None


def modality_set(name_or_names: str | tuple[str, ...] | list[str]) -> tuple[ModalitySpec, ...]:
    """Resolve a set name (``"v1"``, ``"default"``, ``"s2"``) or a list of modality names."""
    if isinstance(name_or_names, str):
        if name_or_names in MODALITY_SETS:
            names = MODALITY_SETS[name_or_names]
        elif "," in name_or_names or name_or_names in MODALITIES:
            names = tuple(n.strip() for n in name_or_names.split(",") if n.strip())
        else:
            raise KeyError(
                f"unknown modality set {name_or_names!r}; known sets: {sorted(MODALITY_SETS)}, "
                f"or give comma-separated modality names from {sorted(MODALITIES)}"
            )
    else:
        names = tuple(name_or_names)
    return tuple(get_modality(n) for n in names)


def registry_to_dict(specs: tuple[ModalitySpec, ...]) -> dict[str, Any]:
    """Serialise a modality set (stored in every corpus so it carries its exact schema)."""
    return {"schema": "olmoearth.modalities/1", "modalities": [s.to_dict() for s in specs]}


def registry_from_dict(d: dict[str, Any]) -> tuple[ModalitySpec, ...]:
    """Inverse of :func:`registry_to_dict`."""
    if d.get("schema") != "olmoearth.modalities/1":
        raise ValueError(f"not a modality registry document (schema={d.get('schema')!r})")
    return tuple(modality_from_dict(m) for m in d["modalities"])
