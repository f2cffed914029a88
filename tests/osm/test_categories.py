from __future__ import annotations

from olmoearth_data.modalities import OSM_RASTER_CATEGORIES
from olmoearth_data.osm.categories import (
    RASTER_CATEGORIES,
    RASTER_CATEGORY_NAMES,
    SAMPLING_CATEGORY_NAMES,
    raster_categories,
    sampling_categories,
)


def test_118_distinct_sampling_categories_and_30_raster_bands_in_order() -> None:
    assert len(SAMPLING_CATEGORY_NAMES) == 118
    assert len(set(SAMPLING_CATEGORY_NAMES)) == 118
    assert SAMPLING_CATEGORY_NAMES[0] == "railway" and SAMPLING_CATEGORY_NAMES[-1] == "natural_volcano"
    assert RASTER_CATEGORY_NAMES == OSM_RASTER_CATEGORIES
    assert len(RASTER_CATEGORIES) == 30


def test_rules() -> None:
    assert sampling_categories(tags={"railway": "rail"}) == ["railway"]
    assert sampling_categories(tags={"railway": "rail", "tunnel": "yes"}) == []
    assert sampling_categories(tags={"railway": "abandoned"}) == []
    assert sampling_categories(tags={"railway": "rail", "bridge": "yes"}) == ["railway", "railway_bridge"]
    assert sampling_categories(tags={"power": "plant", "plant:source": "solar"}) == [
        "power_plant", "power_plant_solar"]  # fmt: skip
    assert sampling_categories(tags={"landuse": "aquaculture"}) == ["aquafarm"]
    assert sampling_categories(tags={"seamark:type": "marine_farm"}) == ["aquafarm"]
    assert "rugby" in sampling_categories(tags={"leisure": "pitch", "sport": "rugby_union"})
    assert "horse" in sampling_categories(tags={"leisure": "track", "sport": "equestrian"})
    assert "horse" not in sampling_categories(tags={"leisure": "pitch", "sport": "equestrian"})
    assert sampling_categories(tags={"amenity": "parking"}) == ["parking_lot"]
    assert sampling_categories(tags={"amenity": "parking", "building": "yes"}) == ["parking_lot"]
    assert sampling_categories(tags={"amenity": "parking", "building": "parking"}) == ["parking_garage"]
    assert sampling_categories(tags={"landuse": "quarry", "resource": "sand"}) == ["quarry", "quarry_sand"]
    assert sampling_categories(tags={"railway": ""}) == []  # "=*" needs a non-empty value


def test_raster_rules_element_types_and_water_tower_typo_fixed() -> None:
    names = [c.name for c in raster_categories(tags={"man_made": "water_tower"}, element_type="node")]
    assert names == ["water_tower"]
    assert raster_categories(tags={"highway": "residential"}, element_type="relation") == []
    assert [c.name for c in raster_categories(tags={"building": "yes"}, element_type="way")] == ["building"]
    assert raster_categories(tags={"building": "yes"}, element_type="node") == []
