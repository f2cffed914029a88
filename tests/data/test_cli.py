"""The olmoearth-data CLI as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "olmoearth_data.cli", *args], capture_output=True, text=True)


def test_tile_by_lonlat_and_by_id_agree() -> None:
    by_point = json.loads(_run("tile", "--lon", "-122.3", "--lat", "37.807").stdout)
    by_id = json.loads(_run("tile", "--id", by_point["id"]).stdout)
    assert by_point == by_id
    assert by_point["epsg"] == 32610


def test_modalities_listing_and_clear_errors() -> None:
    out = _run("modalities", "--set", "v1")
    assert out.returncode == 0
    assert [line.split()[0] for line in out.stdout.splitlines()][:3] == [
        "sentinel2_l2a",
        "sentinel1",
        "landsat",
    ]
    bad = _run("modalities", "--set", "nope")
    assert bad.returncode == 2 and "unknown modality set" in bad.stderr
    bad_id = _run("tile", "--id", "nonsense")
    assert bad_id.returncode == 2 and "not a tile id" in bad_id.stderr
