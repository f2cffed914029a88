"""The modality registry: v1 parity with recipe §1.2, sets, serialisation, sources."""

from __future__ import annotations

import json

import pytest

from olmoearth_data.modalities import (
    MODALITIES,
    MODALITY_SETS,
    BandSet,
    Role,
    Temporal,
    modality_set,
    registry_from_dict,
    registry_to_dict,
)
from olmoearth_data.sources import SOURCES, get_source

# recipe §1.2, copied by hand from the spec table (bands in order, bandset → storage pixel size).
V1_EXPECTED = {
    "sentinel2_l2a": [
        (("B02", "B03", "B04", "B08"), 10.0),
        (("B05", "B06", "B07", "B8A", "B11", "B12"), 20.0),
        (("B01", "B09"), 40.0),
    ],
    "sentinel1": [(("vv", "vh"), 10.0)],
    "landsat": [(("B8",), 10.0), (("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B9", "B10", "B11"), 20.0)],
    "worldcover": [(("B1",), 10.0)],
    "srtm": [(("srtm",), 10.0)],
    "openstreetmap_raster": [
        (
            (
                "aerialway_pylon", "aerodrome", "airstrip", "amenity_fuel", "building", "chimney",
                "communications_tower", "crane", "flagpole", "fountain", "generator_wind", "helipad",
                "highway", "leisure", "lighthouse", "obelisk", "observatory", "parking", "petroleum_well",
                "power_plant", "power_substation", "power_tower", "river", "runway", "satellite_dish",
                "silo", "storage_tank", "taxiway", "water_tower", "works",
            ),
            2.5,
        )
    ],
    "wri_canopy_height_map": [(("B1",), 10.0)],
    "cdl": [(("cdl",), 10.0)],
    "worldcereal": [
        (
            tuple(
                f"{p}-classification"
                for p in (
                    "tc-annual-temporarycrops", "tc-maize-main-irrigation", "tc-maize-main-maize",
                    "tc-maize-second-irrigation", "tc-maize-second-maize",
                    "tc-springcereals-springcereals", "tc-wintercereals-irrigation",
                    "tc-wintercereals-wintercereals",
                )
            ),
            10.0,
        )
    ],
}  # fmt: skip
V1_MAPS = {"worldcover", "srtm", "openstreetmap_raster", "wri_canopy_height_map", "cdl", "worldcereal"}


def test_v1_set_equals_recipe_table() -> None:
    specs = modality_set("v1")
    assert [s.name for s in specs] == list(V1_EXPECTED)
    for spec in specs:
        assert [(bs.bands, bs.pixel_size_m) for bs in spec.bandsets] == V1_EXPECTED[spec.name], spec.name
        assert (spec.role is Role.MAP) == (spec.name in V1_MAPS)
        multitemporal = spec.name in {"sentinel2_l2a", "sentinel1", "landsat"}
        assert spec.temporal is (Temporal.MONTHLY if multitemporal else Temporal.STATIC)
    # recipe §1.2: token slots per position = 6T + 6 for v1.
    assert sum(s.num_bandsets for s in specs if s.is_multitemporal) == 6
    assert sum(s.num_bandsets for s in specs if not s.is_multitemporal) == 6


def test_default_set_swaps_landsat_for_level2_and_every_member_has_a_source() -> None:
    default = [s.name for s in modality_set("default")]
    assert "landsat_l2" in default and "landsat" not in default
    assert [n for n in default if n != "landsat_l2"] == [n for n in MODALITY_SETS["v1"] if n != "landsat"]
    for name in default:
        src = get_source(name)
        assert tuple(b.band for b in src.bands) == MODALITIES[name].bands
    with pytest.raises(KeyError, match="landsat_l2"):
        get_source("landsat")


def test_bandset_names_and_grids() -> None:
    s2 = MODALITIES["sentinel2_l2a"]
    assert [bs.name for bs in s2.bandsets] == ["10m", "20m", "40m"]
    assert [bs.pixels_per_tile for bs in s2.bandsets] == [256, 128, 64]
    osm = MODALITIES["openstreetmap_raster"].bandsets[0]
    assert (osm.name, osm.pixels_per_tile, osm.scale_to_base) == ("2_5m", 1024, 0.25)
    assert s2.bandset_band_indices() == [[0, 1, 2, 3], [4, 5, 6, 7, 8, 9], [10, 11]]
    with pytest.raises(ValueError, match="power of two"):
        BandSet(("x",), 30.0)


def test_registry_round_trips_through_json() -> None:
    for set_name in MODALITY_SETS:
        specs = modality_set(set_name)
        doc = json.loads(json.dumps(registry_to_dict(specs)))
        assert registry_from_dict(doc) == specs


def test_unknown_names_give_clear_errors() -> None:
    with pytest.raises(KeyError, match="known sets"):
        modality_set("nope")
    assert [s.name for s in modality_set("sentinel2_l2a,sentinel1")] == ["sentinel2_l2a", "sentinel1"]
    assert set(SOURCES) >= set(MODALITY_SETS["default"])
