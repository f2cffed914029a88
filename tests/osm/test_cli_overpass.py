"""CLI errors/dry-run and the Overpass stand-in against osmnx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import osmnx as ox
import pandas as pd
import pytest

from olmoearth_data.cli import main
from olmoearth_twin.servers.overpass import OverpassStandIn

from .conftest import BAVARIA, KOTKA, OAKLAND


@pytest.fixture
def overpass() -> Iterator[OverpassStandIn]:
    saved = (ox.settings.overpass_url, ox.settings.overpass_rate_limit, ox.settings.doh_url_template,
             ox.settings.use_cache)  # fmt: skip
    with OverpassStandIn(files=[OAKLAND, BAVARIA]) as srv:
        ox.settings.overpass_url = srv.url
        ox.settings.overpass_rate_limit = False
        ox.settings.doh_url_template = None
        ox.settings.use_cache = False
        yield srv
    (ox.settings.overpass_url, ox.settings.overpass_rate_limit, ox.settings.doh_url_template,
     ox.settings.use_cache) = saved  # fmt: skip


@pytest.mark.parametrize(
    ("path", "bbox", "tags"),
    [
        (
            OAKLAND,
            (-122.3015, 37.8070, -122.2990, 37.8085),
            {"building": True, "highway": True, "amenity": "parking"},
        ),
        (
            OAKLAND,
            (-122.31, 37.80, -122.29, 37.81),
            {"landuse": ["brownfield", "residential"], "railway": True},
        ),
        (BAVARIA, (10.0685, 48.1352, 10.0705, 48.1368), {"building": True, "landuse": True}),
    ],
)
def test_osmnx_via_stand_in_equals_features_from_xml(overpass: OverpassStandIn, path: Path, bbox: tuple,
                                                      tags: dict) -> None:  # fmt: skip
    got = ox.features_from_bbox(bbox, tags=tags)
    ref = ox.features_from_xml(path, polygon=ox.utils_geo.bbox_to_poly(bbox), tags=tags)
    assert len(ref) > 0
    assert set(got.index) == set(ref.index)
    cols = sorted(set(ref.columns) - {"geometry"})
    a = got.loc[ref.index, cols].astype(str)
    b = ref[cols].astype(str)
    pd.testing.assert_frame_equal(a, b, check_like=True)


def test_cli_sample_from_overpass(overpass: OverpassStandIn, tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    rc = main(["sample", "--overpass-bbox=-122.31,37.80,-122.29,37.81", "--overpass-url", overpass.url,
               "--out", str(out), "--quiet"])  # fmt: skip
    assert rc == 0
    df = pd.read_parquet(out)
    cats = {c for cs in df["categories"] for c in cs}
    assert {"railway", "parking_lot", "leisure_park"} <= cats


def test_cli_errors_and_dry_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "cut.osm.pbf"
    bad.write_bytes(KOTKA.read_bytes()[:3000])
    assert main(["sample", "--osm", str(bad), "--out", str(tmp_path / "a.parquet"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and "truncated" in err and len(err.splitlines()) == 1
    assert main(["sample", "--osm", str(tmp_path / "nope.osm"), "--out", str(tmp_path / "a.parquet")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert (
        main(["sample", "--osm", str(OAKLAND), "--out", str(tmp_path / "d.parquet"), "--dry-run", "--quiet"])
        == 0
    )
    assert "estimate:" in capsys.readouterr().out
    assert not (tmp_path / "d.parquet").exists()
