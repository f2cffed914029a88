"""OpenStreetMap raster on the West Oakland fixture: polygons, lines and points on the expected pixels.

Coordinates come straight from the fixture's XML (ElementTree), are projected with pyproj, and pixel
indices are computed by hand: ``col = floor((x − x0) / 2.5)``, ``row = floor((y0 − y) / 2.5)``.
"""

from __future__ import annotations

import bz2
import itertools
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon

from olmoearth_data.grid import Tile
from olmoearth_data.materialise.osm_raster import OsmInput, materialise_osm_raster, rasterise_features
from olmoearth_data.missing import MissingReason
from olmoearth_data.modalities import OSM_RASTER_CATEGORIES, get_modality
from olmoearth_data.osm.extract import RASTER_SCHEMA, extract_osm
from olmoearth_twin.fixtures import fixture_path

OAKLAND_OSM = fixture_path("osm/West-Oakland.osm.bz2")
TILE = Tile.from_id("EPSG:32610_219_-1635")
SPEC = get_modality("openstreetmap_raster")
BUILDING, HIGHWAY, FLAGPOLE = (OSM_RASTER_CATEGORIES.index(c) for c in ("building", "highway", "flagpole"))


@pytest.fixture(scope="module")
def osm_xml() -> tuple[dict[int, tuple[float, float]], list[ET.Element]]:
    root = ET.fromstring(bz2.decompress(OAKLAND_OSM.read_bytes()))
    nodes = {int(n.get("id")): (float(n.get("lon")), float(n.get("lat"))) for n in root.iter("node")}
    return nodes, list(root.iter("way"))


@pytest.fixture(scope="module")
def raster(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    out = tmp_path_factory.mktemp("oakland-osm")
    extract_osm(path=OAKLAND_OSM, out_dir=out)
    result = materialise_osm_raster(tile=TILE, spec=SPEC, osm=OsmInput.from_extraction(out))
    assert result.present[0] and result.reason[0] == MissingReason.PRESENT
    assert 0 < result.extra["osm_coverage"] < 0.1  # the fixture is a ~400 m box inside the tile
    data = result.arrays["2_5m"]
    assert data.shape == (1, 30, 1024, 1024) and data.dtype == np.uint8
    assert set(np.unique(data)) <= {0, 1}
    return data[0]


def _utm(lon: float, lat: float) -> tuple[float, float]:
    return Transformer.from_crs(4326, TILE.epsg, always_xy=True).transform(lon, lat)


def _pixel(x: float, y: float) -> tuple[int, int]:
    x0, _, _, y0 = TILE.bounds
    return math.floor((y0 - y) / 2.5), math.floor((x - x0) / 2.5)


def _ways(ways: list[ET.Element], key: str) -> list[tuple[int, list[int]]]:
    out = []
    for way in ways:
        if any(t.get("k") == key for t in way.iter("tag")):
            out.append((int(way.get("id")), [int(nd.get("ref")) for nd in way.iter("nd")]))
    return out


def test_building_polygons_fill_the_pixels_whose_centres_they_contain(raster: np.ndarray, osm_xml) -> None:
    nodes, ways = osm_xml
    polygons = [
        Polygon([_utm(*nodes[r]) for r in refs])
        for _, refs in _ways(ways, "building")
        if refs[0] == refs[-1] and all(r in nodes for r in refs)
    ]
    assert len(polygons) >= 10
    x0, _, _, y0 = TILE.bounds
    cx, cy = np.meshgrid(x0 + 1.25 + 2.5 * np.arange(1024), y0 - 1.25 - 2.5 * np.arange(1024))
    inside = shapely.contains_xy(shapely.union_all(polygons), cx, cy)
    band = raster[BUILDING].astype(bool)
    assert band.sum() > 500
    # Every pixel whose centre lies in a building way is set; any other set pixel belongs to a
    # building relation (multipolygon) the ways above do not include.
    assert band[inside].all()
    largest = max(polygons, key=lambda p: p.area)
    assert raster[BUILDING][_pixel(*largest.representative_point().coords[0])] == 1


def test_highway_lines_set_every_pixel_under_their_vertices_and_midpoints(
    raster: np.ndarray, osm_xml
) -> None:
    nodes, ways = osm_xml
    checked = 0
    for _, refs in _ways(ways, "highway"):
        coords = [_utm(*nodes[r]) for r in refs if r in nodes]
        for (ax, ay), (bx, by) in itertools.pairwise(coords):
            for x, y in ((ax, ay), ((ax + bx) / 2, (ay + by) / 2)):
                row, col = _pixel(x, y)
                if 0 <= row < 1024 and 0 <= col < 1024:
                    assert raster[HIGHWAY, row, col] == 1, (x, y)
                    checked += 1
    assert checked > 100
    assert raster[HIGHWAY].sum() < 0.1 * 1024 * 1024  # lines, not areas


def test_a_point_sets_exactly_its_pixel(osm_xml) -> None:
    """The fixture has no point features of the 30 categories; a flagpole at a real node's position."""
    nodes, _ = osm_xml
    lon, lat = nodes[53027353]
    row, col = _pixel(*_utm(lon, lat))
    line = LineString([(lon, lat), (lon + 0.0005, lat)])
    table = pa.table(
        {
            "tile_id": [TILE.id] * 3,
            "category": ["flagpole", "highway", "not_a_raster_category"],
            "osm_type": ["n", "w", "n"],
            "osm_id": [1, 2, 3],
            "tag": [None, None, None],
            "geometry": [
                shapely.to_wkb(Point(lon, lat)),
                shapely.to_wkb(line),
                shapely.to_wkb(Point(lon, lat)),
            ],
        },
        schema=RASTER_SCHEMA,
    )
    data = rasterise_features(features=table, tile=TILE)
    assert data[FLAGPOLE].sum() == 1 and data[FLAGPOLE, row, col] == 1
    assert data[HIGHWAY, row, col] == 1
    # ~44 m of line along one row: about 18 pixels, contiguous.
    cols = np.flatnonzero(data[HIGHWAY].any(axis=0))
    assert 16 <= len(cols) <= 20 and np.all(np.diff(cols) == 1)
    others = [i for i in range(30) if i not in (FLAGPOLE, HIGHWAY)]
    assert data[others].sum() == 0


def test_tiles_beyond_the_input_extent_are_outside_coverage(tmp_path: Path) -> None:
    osm = OsmInput(raster_dir=tmp_path, bbox=(-122.30258, 37.80615, -122.29825, 37.80914))
    far = Tile.from_id("EPSG:32610_230_-1635")
    result = materialise_osm_raster(tile=far, spec=SPEC, osm=osm)
    assert not result.present[0] and result.reason[0] == MissingReason.OUTSIDE_COVERAGE
    assert result.arrays["2_5m"].shape == (1, 30, 1024, 1024)
    none = materialise_osm_raster(tile=TILE, spec=SPEC, osm=None)
    assert none.reason[0] == MissingReason.OUTSIDE_COVERAGE
