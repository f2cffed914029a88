"""Extraction counts/geometries against independent routes (xml.etree, osmium filters, osmnx)."""

from __future__ import annotations

import bz2
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import geopandas as gpd
import osmium
import osmium.filter
import osmnx as ox
import pyarrow.parquet as pq
import pytest
import shapely
from shapely.geometry import LineString, Polygon

from olmoearth_data.grid import Tile
from olmoearth_data.osm.extract import read_tile_features

from .conftest import ALL, BAVARIA, KOTKA, OAKLAND


def _independent_rules(tags: dict[str, str]) -> set[str]:
    """Hand-written rules for a few categories (negation, value sets, conjunctions)."""
    out = set()
    if tags.get("railway") and tags.get("tunnel") != "yes" and tags.get("railway") != "abandoned":
        out.add("railway")
    if tags.get("amenity") == "parking" and tags.get("building") != "parking":
        out.add("parking_lot")
    if tags.get("leisure") == "pitch" and tags.get("sport") in ("rugby", "rugby_league", "rugby_union"):
        out.add("rugby")
    if tags.get("leisure") == "track" and tags.get("sport") in ("horse_racing", "equestrian"):
        out.add("horse")
    simple = [
        ("leisure", "playground", "leisure_playground"), ("landuse", "farmland", "farmland"),
        ("amenity", "place_of_worship", "place_of_worship"), ("power", "tower", "power_tower"),
        ("amenity", "fuel", "gas_station"), ("leisure", "pitch", "leisure_pitch"),
    ]  # fmt: skip
    for key, value, name in simple:
        if tags.get(key) == value:
            out.add(name)
    return out


CHECKED = ("railway", "parking_lot", "rugby", "horse", "leisure_playground", "farmland", "place_of_worship",
           "power_tower", "gas_station", "leisure_pitch")  # fmt: skip


def _xml_counts(path: Path) -> Counter[str]:
    opener = bz2.open if path.suffix == ".bz2" else open
    with opener(path, "rb") as fh:
        root = ET.parse(fh).getroot()
    counts: Counter[str] = Counter()
    for el in root:
        if el.tag in ("node", "way"):  # no fixture relation carries a checked category
            counts.update(_independent_rules({t.get("k"): t.get("v") for t in el.findall("tag")}))
    return counts


def _pbf_counts(path: Path) -> Counter[str]:
    keys = ("railway", "amenity", "leisure", "landuse", "power")
    counts: Counter[str] = Counter()
    for obj in osmium.FileProcessor(str(path)).with_filter(osmium.filter.KeyFilter(*keys)):
        if obj.is_node() or obj.is_way():
            counts.update(_independent_rules(dict(obj.tags)))
    return counts


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_sampling_category_counts_match_independent_pass(path: Path, extractions: dict) -> None:
    stats = extractions[path.name].stats
    expected = _pbf_counts(path) if path.suffix == ".pbf" else _xml_counts(path)
    for cat in CHECKED:
        assert stats.features_found.get(cat, 0) == expected.get(cat, 0), cat
    points = pq.read_table(extractions[path.name].points).to_pandas()
    assert Counter(points["category"]) == +stats.features_found


def test_fixture_has_the_interesting_cases(extractions: dict) -> None:
    assert extractions[OAKLAND.name].stats.features_found["railway"] == 2
    assert extractions[KOTKA.name].stats.features_found["parking_lot"] == 12
    assert extractions[BAVARIA.name].stats.relations_unassembled == 1  # the Berlin relation without ways


def _raster(extractions: dict, path: Path, category: str) -> gpd.GeoDataFrame:
    tables = [pq.read_table(p) for p in sorted(Path(extractions[path.name].raster_dir).glob("*.parquet"))]
    df = gpd.pd.concat([t.to_pandas() for t in tables])
    df = df[df["category"] == category].drop_duplicates(["osm_type", "osm_id"])
    return gpd.GeoDataFrame(df, geometry=shapely.from_wkb(df["geometry"].to_numpy()), crs=4326)


def _utm(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gdf.to_crs(gdf.estimate_utm_crs())


@pytest.mark.parametrize("path", [OAKLAND, BAVARIA], ids=lambda p: p.name)
def test_raster_geometries_match_osmnx(path: Path, extractions: dict) -> None:
    ref = ox.features_from_xml(path, tags={"building": True, "highway": True})
    ref = ref[ref.index.get_level_values(0) == "way"]
    crs = _utm(ref).crs
    ref_b = ref[ref["building"].notna() & (ref.geom_type == "Polygon")]
    mine_b = _raster(extractions, path, "building")
    mine_b = mine_b[mine_b["osm_type"] == "w"].set_index("osm_id")
    assert set(ref_b.index.get_level_values(1)) <= set(mine_b.index)
    ids = list(ref_b.index.get_level_values(1))
    assert mine_b.loc[ids].to_crs(crs).area.sum() == pytest.approx(ref_b.to_crs(crs).area.sum(), rel=1e-9)
    ref_h = ref[ref["highway"].notna() & (ref.geom_type == "LineString")]
    mine_h = _raster(extractions, path, "highway").set_index("osm_id")
    assert set(ref_h.index.get_level_values(1)) == set(mine_h.index)
    assert mine_h.to_crs(crs).length.sum() == pytest.approx(ref_h.to_crs(crs).length.sum(), rel=1e-9)


def test_raster_geometries_match_osmium_pbf(extractions: dict) -> None:
    area = length = 0.0
    n_b = n_h = 0
    fp = osmium.FileProcessor(str(KOTKA), osmium.osm.NODE | osmium.osm.WAY).with_locations()
    crs = "EPSG:32635"
    polys, lines = [], []
    for obj in fp.with_filter(osmium.filter.KeyFilter("building", "highway")):
        if not obj.is_way():
            continue
        coords = [(n.lon, n.lat) for n in obj.nodes if n.location.valid()]
        if "building" in obj.tags and len(coords) >= 3 and Polygon(coords).is_valid:
            polys.append(Polygon(coords))
        if "highway" in obj.tags and len(coords) >= 2:
            lines.append(LineString(coords))
    area = gpd.GeoSeries(polys, crs=4326).to_crs(crs).area.sum()
    length = gpd.GeoSeries(lines, crs=4326).to_crs(crs).length.sum()
    n_b, n_h = len(polys), len(lines)
    mine_b = _raster(extractions, KOTKA, "building")
    mine_h = _raster(extractions, KOTKA, "highway")
    assert len(mine_b) == n_b and len(mine_h) == n_h
    assert mine_b.to_crs(crs).area.sum() == pytest.approx(area, rel=1e-9)
    assert mine_h.to_crs(crs).length.sum() == pytest.approx(length, rel=1e-9)


def test_raster_partition_by_tile(extractions: dict) -> None:
    res = extractions[KOTKA.name]
    tables = [pq.read_table(p) for p in sorted(Path(res.raster_dir).glob("*.parquet"))]
    assert all(b"geo" in t.schema.metadata for t in tables)
    tile_ids = sorted({t for tab in tables for t in tab["tile_id"].to_pylist()})
    assert len(tile_ids) > 1
    total = 0
    for tid in tile_ids:
        tab = read_tile_features(raster_dir=res.raster_dir, tile_id=tid)
        total += tab.num_rows
        tile = Tile.from_id(tid)
        geoms = shapely.from_wkb(tab["geometry"].to_numpy(zero_copy_only=False))
        proj = gpd.GeoSeries(geoms, crs=4326).to_crs(tile.epsg)
        assert proj.intersects(tile.polygon()).all()
    assert total == sum(t.num_rows for t in tables)
