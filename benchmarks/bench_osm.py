"""Throughput, scaling and peak memory of the OSM pass (:func:`olmoearth_data.osm.extract.extract_osm`).

Input — a synthesised PBF of ≥ ``--target-mb`` MB mixing the three real OSM fixtures
(:mod:`osm_bench.mix`: 1 Kotka : 4 West Oakland : 4 southern-German village copies per cycle, ids
interleaved across copies, sorted by type then id, cached under ``build/bench_osm/``).

Runs, each in a child process (:mod:`osm_bench.runs`: wall time, CPU seconds of the child and its
workers, peak memory of the process tree split into anonymous memory and mapped files):

* ``today`` — the per-element pass of ``--baseline-commit`` (``osm/extract.py`` loaded from git),
* ``new-1w`` / ``new-2w`` — the vectorised, block-parallel pass with 1 and 2 worker processes,

alternated round by round (``--rounds``; today's pass, the slow one, in the first
``--baseline-rounds``), so a busy shared machine slows them alike; before each round the benchmark
waits (``--wait-quiet`` seconds at most) for the other processes to leave the CPUs nearly idle, and
records the CPUs they kept busy and the load average around every run. Wall-time scaling needs idle
CPUs; CPU seconds per element (1 vs 2 workers) are the load-independent measure of what a second
worker costs, and ``worker_start_*`` the seconds until a fresh process's second worker has answered
(``fork`` at the pass's start, as the pass does, vs a ``forkserver`` that first imports the pass's
modules). Floors on the same file: every element through a pyosmium loop with no work, the
per-element pass's reader configuration with an empty loop body, libosmium alone (decode + node
index), the C++ half of the new pass (decode + index + key filter + OPL), and ``osmium cat`` /
``osmium tags-filter`` of the same keys when osmium-tool is installed.

Figures go to ``benchmarks/results/osm_extract.json``, with a planet extrapolation (10^10 elements,
16 cores); ``docs/osm.md`` explains them. Run: ``make bench-osm`` (or
``.venv/bin/python benchmarks/bench_osm.py [--target-mb 30]``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import osmium
import osmium.version

sys.path.insert(0, str(Path(__file__).parent))
from osm_bench.mix import MIX_NOTE, synthesise
from osm_bench.runs import BASELINE_COMMIT, DEFAULT_CACHE, ROOT, child, run_child, wait_quiet
from provenance import cpu_name, git_commit

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "osm_extract.json"
PLANET_ELEMENTS = 10_000_000_000
PLANET_CORES = 16
#: raster parts of the main runs (the memory check runs a quarter-size file with one)
BUCKETS = 4
PLANET_NOTE = (
    "hours = elements / (1-worker rate × 16 × parallel efficiency). Efficiency: CPU seconds per element with "
    "1 worker / with 2 workers (load-independent; it includes the workers' contention for caches and memory "
    "bandwidth, not the serial stages, which a planet run's hours dwarf); hours_wall_scaling uses the "
    "wall-time ratio measured on this shared 2-core machine instead. Memory does not grow with the file: "
    "node locations go to a memory-mapped index on disk (dense, ~100 GB for a planet), each worker holds one "
    "piece and one batch, relation areas are assembled per group of ≤ 64 relation blobs (docs/osm.md). Not "
    "modelled: a planet's index exceeds the page cache of most nodes (random reads on lookups); one more "
    "decode of the way blobs per relation group; a planet's lower share of elements with a category key "
    "(less Python work per element than here)."
)


def _versions() -> dict[str, str]:
    import numpy
    import pyarrow
    import pyproj
    import shapely

    out = {"python": platform.python_version(), "pyosmium": osmium.version.pyosmium_release,
           "libosmium": osmium.version.libosmium_version, "shapely": shapely.__version__,
           "geos": shapely.geos_version_string, "pyarrow": pyarrow.__version__, "numpy": numpy.__version__,
           "pyproj": pyproj.__version__}  # fmt: skip
    if shutil.which("osmium"):
        out["osmium-tool"] = subprocess.run(
            ["osmium", "--version"], capture_output=True, text=True
        ).stdout.split("\n")[0]
    return out


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target-mb", type=float, default=30.0, help="size of the synthesised PBF (MB)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--rounds", type=int, default=5, help="rounds of new-1w, new-2w (alternated)")
    p.add_argument("--more-workers", default="",
                   help="worker counts run in every round besides 1 and 2, e.g. 4,8")  # fmt: skip
    p.add_argument(
        "--baseline-rounds", type=int, default=1, help="rounds that also run today's pass (0: none)"
    )
    p.add_argument("--baseline-commit", default=BASELINE_COMMIT)
    p.add_argument("--no-floors", action="store_true", help="skip the floor runs")
    p.add_argument("--wait-quiet", type=float, default=300.0,
                   help="seconds to wait at most before each round for other processes to idle")  # fmt: skip
    p.add_argument("--no-memory-check", dest="memory_check", action="store_false",
                   help="skip the quarter-size input run (peak memory vs input size)")  # fmt: skip
    p.add_argument("--child", nargs=4, metavar=("MODE", "PBF", "OUT_DIR", "EXTRA"), help=argparse.SUPPRESS)
    return p


def _floors(pbf: Path, n: int) -> dict:
    modes = ["pyosmium_iterate_all", "pyosmium_old_reader_empty_loop", "cpp_decode_and_index",
             "cpp_decode_index_filter_opl"]  # fmt: skip
    if shutil.which("osmium"):
        modes += ["osmium_cat", "osmium_tags_filter"]
    floors = {}
    for mode in modes:
        res = run_child(mode, pbf)
        floors[mode] = {"seconds": round(res["seconds"], 2), "elements_per_s": round(n / res["seconds"]),
                        "load_avg_before": res["load_avg_before"]}  # fmt: skip
        print(f"floor {mode} {res['seconds']:.1f}s", flush=True)
    return floors


def _worker_start(pbf: Path) -> dict:
    """What a second worker costs before it does any work: ``fork`` (the pass) vs ``forkserver``."""
    out = {}
    for method in ("fork", "forkserver"):
        res = run_child(f"worker_start_{method}", pbf)
        out[method] = {"seconds": res["start_seconds"], "load_avg_before": res["load_avg_before"]}
        print(f"worker start {method} {res['start_seconds']:.2f}s", flush=True)
    return out


def _memory_check(args: argparse.Namespace, pbf: Path, mix: dict) -> dict:
    """Same rows per raster part, a quarter of the input: does the peak follow the input size?"""
    small, small_mix = synthesise(target_mb=args.target_mb / 4, cache_dir=args.cache_dir)
    memory = {}
    for name, path, meta, buckets in (("quarter", small, small_mix, 1), ("full", pbf, mix, BUCKETS)):
        res = run_child("new-1w", path, f"1,{buckets}")
        memory[name] = {"bytes": path.stat().st_size, "elements": meta["elements"], "buckets": buckets,
                        "seconds": round(res["seconds"], 2), "peak": res["peak_memory"]}  # fmt: skip
        print(f"memory {name} {res['peak_memory']}", flush=True)
    return memory


def _scaling(by: dict[str, list[dict]], n: int) -> dict:
    """2 workers vs 1: wall-time ratios per round, and CPU seconds per element (load-independent)."""
    one, two = by["new-1w"], by["new-2w"]
    wall = [a["seconds"] / b["seconds"] for a, b in zip(one, two)]
    others = [
        max(a["other_busy_cpus_during_approx"], b["other_busy_cpus_during_approx"]) for a, b in zip(one, two)
    ]
    cpu = [a["cpu_seconds"] / b["cpu_seconds"] for a, b in zip(one, two)]
    return {
        "new_2_workers_over_1_per_round": [round(x, 2) for x in wall],
        "new_2_workers_over_1_median": round(_median(wall), 2),
        "new_2_workers_over_1_min_max": [round(min(wall), 2), round(max(wall), 2)],
        "other_busy_cpus_per_round": [round(x, 2) for x in others],
        "new_2_workers_over_1_rounds_without_other_load": [
            round(x, 2) for x, o in zip(wall, others) if o < 0.3
        ],
        "cpu_us_per_element_1_worker": round(1e6 * _median([a["cpu_seconds"] for a in one]) / n, 3),
        "cpu_us_per_element_2_workers": round(1e6 * _median([b["cpu_seconds"] for b in two]) / n, 3),
        "cpu_seconds_1_over_2_per_round": [round(x, 3) for x in cpu],
        "per_worker_efficiency_2_workers": round(min(1.0, _median(cpu)), 3),
    }


def _amdahl(call: dict[int, float], n: int) -> dict:
    """Serial and parallel seconds of the pass fitted to 1 and the most workers measured, scaled to a planet.

    Conservative: the serial part (one process's stages, the pool's start, the tail of the last
    pieces) is assumed to grow with the file like the rest.
    """
    w = max(call)
    if w < 2:
        return {}
    parallel = (call[1] - call[w]) / (1 - 1 / w)
    serial = max(0.0, call[1] - parallel)
    scale = PLANET_ELEMENTS / n
    return {
        "fitted_on_workers": [1, w],
        "serial_seconds": round(serial, 2),
        "parallel_seconds": round(parallel, 2),
        "hours_16_workers": round((serial + parallel / PLANET_CORES) * scale / 3600, 2),
        "note": "pass seconds (extract_osm call) = serial + parallel / workers, fitted here; both scaled "
        "by planet elements / these elements",
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    t0 = time.perf_counter()
    pbf, mix = synthesise(target_mb=args.target_mb, cache_dir=args.cache_dir)
    synth_s = time.perf_counter() - t0
    n = mix["elements"]
    load_start = os.getloadavg()
    more = [int(v) for v in args.more_workers.split(",") if v.strip()]
    runs: list[dict] = []
    for r in range(args.rounds):
        quiet = wait_quiet(args.wait_quiet) if args.wait_quiet else {}
        counts = [1, 2, *more]
        order = counts if r % 2 == 0 else counts[::-1]  # none always runs first after the quiet wait
        for workers in order:
            res = run_child(f"new-{workers}w", pbf, f"{workers},{BUCKETS}")
            runs.append({"run": f"new-{workers}w", "round": r, **quiet, **res})
            print(f"round {r} new-{workers}w {res['seconds']:.1f}s cpu {res['cpu_seconds']:.1f}s "
                  f"load {res['load_avg_before'][0]}", flush=True)  # fmt: skip
        if r < args.baseline_rounds:
            res = run_child("today", pbf, args.baseline_commit)
            runs.append({"run": "today", "round": r, **res})
            print(f"round {r} today {res['seconds']:.1f}s load {res['load_avg_before'][0]}", flush=True)
    memory = _memory_check(args, pbf, mix) if args.memory_check else {}
    floors = {} if args.no_floors else _floors(pbf, n)
    worker_start = {} if args.no_floors else _worker_start(pbf)

    def rate(run: dict) -> float:
        return n / run["seconds"]

    by = {name: [x for x in runs if x["run"] == name] for name in ("new-1w", "new-2w", "today")}
    call = {w: _median([x["call_seconds"] for x in runs if x["run"] == f"new-{w}w"]) for w in (1, 2, *more)}
    amdahl = _amdahl(call, n)
    more_scaling = {f"call_{w}_workers_over_1_median": round(call[1] / call[w], 2) for w in call if w > 1} | {
        f"new_{w}_workers_over_1_median": round(
            _median(
                [
                    a["seconds"] / b["seconds"]
                    for a, b in zip(by["new-1w"], [x for x in runs if x["run"] == f"new-{w}w"])
                ]
            ),
            2,
        )
        for w in more
    }
    r1, r2 = _median([rate(x) for x in by["new-1w"]]), _median([rate(x) for x in by["new-2w"]])
    r_today = _median([rate(x) for x in by["today"]]) if by["today"] else None
    pair_1vtoday = [rate(a) / rate(t) for a, t in zip(by["new-1w"], by["today"])]
    stats = by["new-1w"][0]["stats"]
    today_share = by["today"][0]["stats"]["tagged_elements"] / n if by["today"] else None
    scaling = _scaling(by, n)
    efficiency = scaling["per_worker_efficiency_2_workers"]  # for the planet (PLANET_NOTE)
    wall_efficiency = min(1.0, scaling["new_2_workers_over_1_median"] / 2)
    peaks = {name: max((x["peak_memory"] for x in xs), key=lambda m: m["total_rss_mib"], default=None)
             for name, xs in by.items()}  # fmt: skip
    result = {
        "benchmark": "OSM pass (extract_osm: points + per-tile raster GeoParquet), batched, block-parallel",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "baseline_commit": args.baseline_commit,
        "machine": {"cpu": cpu_name(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": _versions(),
        "load_avg_start": [round(x, 2) for x in load_start],
        "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        "input": {
            "path": str(pbf.relative_to(ROOT)) if pbf.is_relative_to(ROOT) else str(pbf),
            "bytes": pbf.stat().st_size,
            "synthesis_seconds": round(synth_s, 1),
            **mix,
            "mix_note": MIX_NOTE,
        },
        "elements_per_s": {
            "new_1_worker": round(r1),
            "new_2_workers": round(r2),
            "today": round(r_today) if r_today else None,
        },
        "ratios": {
            **scaling,
            **more_scaling,
            "new_1_worker_over_today_per_round": [round(x, 2) for x in pair_1vtoday],
        },
        "share_reaching_python": {
            "today_one_object_at_a_time": round(today_share, 4) if today_share else None,
            "new_in_batches_after_cpp_key_filter": round(stats["tagged_elements"] / n, 4),
            "new_one_object_at_a_time": "assembled relation areas only",
        },
        "peak_memory_mib": peaks,
        "peak_memory_vs_input_size": memory,
        "floors": floors,
        "worker_start_seconds": worker_start,
        "runs": [
            {k: v for k, v in x.items() if k != "stats"} | {"elements_per_s": round(rate(x))} for x in runs
        ],
        "stats_new": stats,
        "planet_extrapolation": {
            "elements": PLANET_ELEMENTS,
            "cores": PLANET_CORES,
            "parallel_efficiency_assumed": round(efficiency, 2),
            "hours": round(PLANET_ELEMENTS / (r1 * PLANET_CORES * efficiency) / 3600, 2),
            "parallel_efficiency_wall_time": round(wall_efficiency, 2),
            "hours_wall_scaling": round(PLANET_ELEMENTS / (r1 * PLANET_CORES * wall_efficiency) / 3600, 2),
            "hours_single_process": round(PLANET_ELEMENTS / r1 / 3600, 1),
            "today_hours_single_process": round(PLANET_ELEMENTS / r_today / 3600, 1) if r_today else None,
            "note": PLANET_NOTE,
            "amdahl": amdahl,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("elements_per_s", "ratios", "planet_extrapolation")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
