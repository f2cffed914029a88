"""The OSM benchmark runs end to end on a tiny synthetic PBF (the real run is `make bench`)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_osm_tiny(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_osm", ROOT / "benchmarks" / "bench_osm.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "r.json"
    assert mod.main(["--target-mb", "0.1", "--cache-dir", str(tmp_path), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["elements_per_s"] > 0 and result["peak_rss_mib"] > 0
    assert result["input"]["synthesis"].startswith("2 translated copies")
    assert result["input"]["elements"] % 2 == 0 and result["input"]["elements"] > 30_000
    assert result["raster_features"]["building"] > 0
