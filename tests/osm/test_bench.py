"""The OSM benchmark runs end to end on a tiny mixed input (the real run is `make bench-osm`)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_osm_tiny(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_osm", ROOT / "benchmarks" / "bench_osm.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "r.json"
    baseline = 1 if shutil.which("git") and (ROOT / ".git").exists() else 0
    argv = ["--target-mb", "0.1", "--cache-dir", str(tmp_path), "--out", str(out), "--rounds", "1",
            "--baseline-rounds", str(baseline), "--no-floors", "--no-memory-check",
            "--wait-quiet", "0"]  # fmt: skip
    assert mod.main(argv) == 0
    result = json.loads(out.read_text())
    mix = result["input"]
    cycles = mix["cycles"]
    assert mix["copies"] == {"test.osm.pbf": cycles, "West-Oakland.osm.bz2": 4 * cycles,
                             "planet_10.068,48.135_10.071,48.137.osm": 4 * cycles}  # fmt: skip
    assert mix["elements"] == sum(mix["types"].values()) > 20_000
    assert all(v > 0 for v in mix["elements_by_fixture"].values())
    rates = result["elements_per_s"]
    assert rates["new_1_worker"] > 0 and rates["new_2_workers"] > 0
    assert result["peak_memory_mib"]["new-1w"]["total_rss_mib"] > 0
    assert 0 < result["share_reaching_python"]["new_in_batches_after_cpp_key_filter"] < 1
    assert result["stats_new"]["raster_features"]["building"] > 0
    assert result["planet_extrapolation"]["hours"] > 0
    if baseline:  # today's pass on the same file finds the same features
        today = next(r for r in result["runs"] if r["run"] == "today")
        assert today["elements_per_s"] > 0
