"""Throughput, scaling and peak memory of the OSM pass (:func:`olmoearth_data.osm.extract.extract_osm`).

Input — a synthesised PBF of ≥ ``--target-mb`` MB that mixes the three real OSM fixtures, so its element
mix is that of real places rather than copies of one town: per cycle 1 copy of Kotka (Finnish town,
``test.osm.pbf``), 4 of West Oakland (US city blocks with route relations) and 4 of the southern-German
village (``planet_10.068,…``), each copy translated to its own 0.045° × 0.025° cell of a grid starting
at 5.5° E 47° N (so UTM zones 31/32 both occur). Ids are dealt out interleaved across copies (element
``r`` of a fixture of ``n`` sorts at ``(r + U[0, 1)) / n``, seeded), as in a real file where a region's
nodes are spread over the whole id range (a way's nodes are far apart in id, blobs are spatially
scattered); refs to elements the fixture lacks are dropped. The PBF is sorted
by type then id and cached under ``build/bench_osm/`` with its element counts (``.json``).

Runs, each in a child process (its peak memory is sampled from /proc over the child and every
process below it, split into anonymous memory and mapped files):

* ``today`` — the per-element pass of ``--baseline-commit`` (``osm/extract.py`` loaded from git),
* ``new-1w`` / ``new-2w`` — the vectorised, block-parallel pass with 1 and 2 worker processes,

alternated round by round (``--rounds``; today's pass, the slow one, in the first
``--baseline-rounds``), so a busy shared machine slows them alike; before each round the benchmark
waits (``--wait-quiet`` seconds at most) for the other processes to leave the CPUs nearly idle, and
records the CPUs they kept busy and the load average around every run. Floors on the same file:
every element through a pyosmium loop with no work, the per-element pass's reader configuration with
an empty loop body, libosmium alone (decode + node index), the C++ half of the new pass (decode +
index + key filter + OPL), and ``osmium cat`` / ``osmium tags-filter`` of the same keys when
osmium-tool is installed.

Figures go to ``benchmarks/results/osm_extract.json``, with a planet extrapolation (10^10 elements,
16 cores). Run: ``make bench-osm`` (or ``.venv/bin/python benchmarks/bench_osm.py [--target-mb 30]``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import osmium
import osmium.filter
import osmium.version

sys.path.insert(0, str(Path(__file__).parent))
from provenance import cpu_name, git_commit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "osm_extract.json"
DEFAULT_CACHE = ROOT / "build" / "bench_osm"
#: the commit whose osm/extract.py is "today's" per-element pass (the last one before issue 18)
BASELINE_COMMIT = "85b07414e5f4906d038f3d64348c9a4b6f77e254"
BASELINE_PATH = "packages/olmoearth-data/src/olmoearth_data/osm/extract.py"
PLANET_ELEMENTS = 10_000_000_000
#: raster parts of the main runs (the memory check runs a quarter-size file with one)
BUCKETS = 4
PLANET_CORES = 16
#: fixture, copies per cycle
MIX = (
    ("osm/test.osm.pbf", 1),
    ("osm/West-Oakland.osm.bz2", 4),
    ("osm/planet_10.068,48.135_10.071,48.137.osm", 4),
)
CELL = (0.045, 0.025)
#: PBF bytes per element of the mix (to size it from --target-mb)
BYTES_PER_ELEMENT = 6.0
MIX_NOTE = (
    "1 Kotka : 4 West Oakland : 4 southern-German village copies per cycle, ids interleaved across copies. "
    "For comparison a planet (public statistics, approximate): nodes ~89 %, ways ~11 %, relations ~0.1 %, "
    "a lower share of elements with a category key than these town extracts"
)
PLANET_NOTE = (
    "elements / (1-worker rate × 16 × the parallel efficiency measured with 2 workers here). Memory does not "
    "grow with the file: node locations go to a memory-mapped index on disk (dense, ~100 GB for a planet), "
    "each worker holds one piece and one batch. Not modelled: a planet's index exceeds the page cache of "
    "most nodes (random reads on lookups), and a planet's lower share of elements with a category key (less "
    "Python work per element than here)."
)
ORIGIN = (5.5, 47.0)


# ------------------------------------------------------------------------------------------- input
def _load(path: Path) -> dict[str, list]:
    out: dict[str, list] = {"n": [], "w": [], "r": []}
    for o in osmium.FileProcessor(str(path)):
        tags = {t.k: t.v for t in o.tags}
        if o.is_node():
            out["n"].append((o.id, o.location.lon, o.location.lat, tags))
        elif o.is_way():
            out["w"].append((o.id, [n.ref for n in o.nodes], tags))
        elif o.is_relation():
            out["r"].append((o.id, [(m.type, m.ref, m.role) for m in o.members], tags))
    return {k: sorted(v) for k, v in out.items()}


def synthesise(*, target_mb: float, cache_dir: Path) -> tuple[Path, dict]:
    """Write (or reuse) the mixed PBF of ≥ ``target_mb`` MB; return its path and its description."""
    from olmoearth_data.osm.categories import RELEVANT_KEYS
    from olmoearth_twin.fixtures import fixture_path

    cache_dir.mkdir(parents=True, exist_ok=True)
    data = [(rel, k, _load(fixture_path(rel))) for rel, k in MIX]
    per_cycle = sum(k * sum(len(v) for v in d.values()) for _, k, d in data)
    cycles = max(1, math.ceil(target_mb * 1e6 / (BYTES_PER_ELEMENT * per_cycle)))
    path = cache_dir / f"mix_{cycles}cycles.osm.pbf"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        return path, json.loads(meta_path.read_text())
    copies = [(fi, c) for c in range(cycles) for fi, (_, k, _) in enumerate(data) for _ in range(k)]
    side = math.ceil(math.sqrt(len(copies)))
    new_ids: dict[str, dict[tuple[int, int], int]] = {}
    rng = np.random.default_rng(0)
    for kind in ("n", "w", "r"):  # interleave: element r of copy c sorts by (r + U[0, 1)) / n_fixture
        items = [((rank + rng.random()) / len(data[fi][2][kind]), c, rank)
                 for c, (fi, _) in enumerate(copies) for rank in range(len(data[fi][2][kind]))]  # fmt: skip
        items.sort()
        new_ids[kind] = {(c, rank): i + 1 for i, (_, c, rank) in enumerate(items)}
    rank_of = [
        {kind: {el[0]: r for r, el in enumerate(d[kind])} for kind in ("n", "w", "r")} for _, _, d in data
    ]
    counts = {"n": 0, "w": 0, "r": 0, "n_tagged": 0, "n_relevant": 0, "w_relevant": 0, "r_relevant": 0}
    by_fixture = {Path(rel).name: 0 for rel, _ in MIX}
    header = osmium.io.Header()
    header.set("sorting", "Type_then_ID")
    header.add_box(
        osmium.osm.Box(ORIGIN[0], ORIGIN[1], ORIGIN[0] + side * CELL[0], ORIGIN[1] + side * CELL[1])
    )
    tmp = path.with_suffix(".tmp.pbf")
    tmp.unlink(missing_ok=True)
    writer = osmium.SimpleWriter(str(tmp), header=header)
    shift = []
    for c, (fi, _) in enumerate(copies):
        nodes = data[fi][2]["n"]
        x0, y0 = min(n[1] for n in nodes), min(n[2] for n in nodes)
        shift.append((ORIGIN[0] + (c % side) * CELL[0] - x0, ORIGIN[1] + (c // side) * CELL[1] - y0))
    order = {kind: sorted(new_ids[kind].items(), key=lambda kv: kv[1]) for kind in ("n", "w", "r")}
    try:
        for (c, rank), nid in order["n"]:
            fi = copies[c][0]
            _, lon, lat, tags = data[fi][2]["n"][rank]
            writer.add_node(
                osmium.osm.mutable.Node(id=nid, location=(lon + shift[c][0], lat + shift[c][1]), tags=tags)
            )
            counts["n"] += 1
            counts["n_tagged"] += bool(tags)
            counts["n_relevant"] += not RELEVANT_KEYS.isdisjoint(tags)
            by_fixture[Path(MIX[fi][0]).name] += 1
        for (c, rank), wid in order["w"]:
            fi = copies[c][0]
            _, refs, tags = data[fi][2]["w"][rank]
            ids = [new_ids["n"][(c, rank_of[fi]["n"][r])] for r in refs if r in rank_of[fi]["n"]]
            writer.add_way(osmium.osm.mutable.Way(id=wid, nodes=ids, tags=tags))
            counts["w"] += 1
            counts["w_relevant"] += not RELEVANT_KEYS.isdisjoint(tags)
            by_fixture[Path(MIX[fi][0]).name] += 1
        for (c, rank), rid in order["r"]:
            fi = copies[c][0]
            _, members, tags = data[fi][2]["r"][rank]
            ms = [
                (t, new_ids[t][(c, rank_of[fi][t][ref])], role)
                for t, ref, role in members
                if ref in rank_of[fi][t]
            ]
            writer.add_relation(osmium.osm.mutable.Relation(id=rid, members=ms, tags=tags))
            counts["r"] += 1
            counts["r_relevant"] += not RELEVANT_KEYS.isdisjoint(tags)
            by_fixture[Path(MIX[fi][0]).name] += 1
    finally:
        writer.close()
    tmp.rename(path)
    total = counts["n"] + counts["w"] + counts["r"]
    meta = {
        "cycles": cycles,
        "copies": {Path(rel).name: k * cycles for rel, k in MIX},
        "elements": total,
        "elements_by_fixture": by_fixture,
        "types": {k: counts[k] for k in ("n", "w", "r")},
        "type_shares": {k: round(counts[k] / total, 4) for k in ("n", "w", "r")},
        "tagged_node_share": round(counts["n_tagged"] / counts["n"], 4),
        "relevant_key_share": round(
            (counts["n_relevant"] + counts["w_relevant"] + counts["r_relevant"]) / total, 4
        ),
        "relevant_by_type": {k: counts[f"{k}_relevant"] for k in ("n", "w", "r")},
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return path, meta


# ------------------------------------------------------------------------------------------- runs
def _baseline_module(commit: str):
    """``osm/extract.py`` as of ``commit`` (today's per-element pass), imported under another name."""
    src = subprocess.run(["git", "show", f"{commit}:{BASELINE_PATH}"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "osm_extract_baseline.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("osm_extract_baseline", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["osm_extract_baseline"] = mod  # dataclasses need the module registered
    spec.loader.exec_module(mod)
    return mod


def _child(mode: str, pbf: str, out_dir: str, extra: str) -> None:
    """One timed run in this (child) process; prints a JSON line."""
    from olmoearth_data.osm.categories import RELEVANT_KEYS

    t0 = time.perf_counter()
    result: dict = {}
    keys = sorted(RELEVANT_KEYS)
    if mode == "today":
        mod = _baseline_module(extra)
        res = mod.extract_osm(path=pbf, out_dir=out_dir, buckets=4)
        result["stats"] = res.stats.to_dict()
    elif mode.startswith("new"):
        from olmoearth_data.osm.extract import extract_osm

        workers, buckets = (int(v) for v in extra.split(","))
        res = extract_osm(path=pbf, out_dir=out_dir, buckets=buckets, workers=workers)
        result["stats"] = res.stats.to_dict()
        result["timings"] = res.timings
    elif mode == "pyosmium_iterate_all":
        for _ in osmium.FileProcessor(pbf):
            pass
    elif mode == "pyosmium_old_reader_empty_loop":
        proc = osmium.FileProcessor(pbf).with_locations("flex_mem")
        proc = proc.with_areas(osmium.filter.KeyFilter(*keys)).with_filter(osmium.filter.KeyFilter(*keys))
        for _ in proc:
            pass
    elif mode == "cpp_decode_and_index":
        table = osmium.index.create_map(f"sparse_file_array,{out_dir}/nodes.idx")
        lh = osmium.NodeLocationsForWays(table)
        with osmium.io.Reader(pbf) as rd:
            osmium.apply(rd, lh)
    elif mode == "cpp_decode_index_filter_opl":
        from olmoearth_data.osm.opl import write_opl

        table = osmium.index.create_map(f"sparse_file_array,{out_dir}/nodes.idx")
        write_opl(source=pbf, entities=osmium.osm.ALL, out=Path(out_dir) / "all.opl", locations=table)
    elif mode == "osmium_cat":
        subprocess.run(
            ["osmium", "cat", pbf, "-f", "opl", "-o", f"{out_dir}/cat.opl", "--overwrite"], check=True
        )
    elif mode == "osmium_tags_filter":
        subprocess.run(["osmium", "tags-filter", pbf, "nwr/" + ",".join(keys), "-o", f"{out_dir}/f.osm.pbf",
                        "--overwrite"], check=True)  # fmt: skip
    else:
        raise ValueError(mode)
    result["seconds"] = time.perf_counter() - t0
    print(json.dumps(result))


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def _mem(pid: int) -> dict[str, int]:
    """kB of RssAnon/RssFile/RssShmem/VmRSS of one process."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("RssAnon", "RssFile", "RssShmem", "VmRSS"):
                out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def _cpu_sample() -> tuple[int, int]:
    """(total, idle + iowait) jiffies of all CPUs, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields[:8]), fields[3] + fields[4]


def _busy_between(a: tuple[int, int], b: tuple[int, int]) -> float:
    """CPUs busy (all processes) between two samples."""
    return (os.cpu_count() or 1) * (1 - (b[1] - a[1]) / max(1, b[0] - a[0]))


def busy_cpus(window: float = 3.0) -> float:
    """CPUs busy over ``window`` seconds (this process idles meanwhile)."""
    a = _cpu_sample()
    time.sleep(window)
    return _busy_between(a, _cpu_sample())


def wait_quiet(limit_s: float, threshold: float = 0.3) -> dict:
    """Wait up to ``limit_s`` for the other processes to use < ``threshold`` CPUs; say what was seen."""
    start = time.monotonic()
    busy = busy_cpus()
    while busy >= threshold and time.monotonic() - start < limit_s:
        busy = busy_cpus()
    return {"other_busy_cpus": round(busy, 2), "waited_s": round(time.monotonic() - start, 1)}


def run_child(mode: str, pbf: Path, extra: str = "") -> dict:
    """Run ``mode`` in a child process; add the peak memory of its process tree and the load."""
    with tempfile.TemporaryDirectory(dir=DEFAULT_CACHE if DEFAULT_CACHE.exists() else None) as work:
        load_before, cpu_before, t_before = os.getloadavg(), _cpu_sample(), time.perf_counter()
        proc = subprocess.Popen([sys.executable, __file__, "--child", mode, str(pbf), work, extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        peak = {"total_rss_mib": 0.0, "anon_mib": 0.0, "file_mib": 0.0, "max_process_rss_mib": 0.0}
        while proc.poll() is None:
            mems = [_mem(p) for p in _tree(proc.pid)]
            peak["total_rss_mib"] = max(peak["total_rss_mib"], sum(m.get("VmRSS", 0) for m in mems) / 1024)
            peak["anon_mib"] = max(peak["anon_mib"], sum(m.get("RssAnon", 0) for m in mems) / 1024)
            peak["file_mib"] = max(
                peak["file_mib"], sum(m.get("RssFile", 0) + m.get("RssShmem", 0) for m in mems) / 1024
            )
            peak["max_process_rss_mib"] = max(
                [peak["max_process_rss_mib"], *(m.get("VmRSS", 0) / 1024 for m in mems)]
            )
            time.sleep(0.05)
        out, err = proc.communicate()
        wall, busy = time.perf_counter() - t_before, _busy_between(cpu_before, _cpu_sample())
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark run {mode} failed:\n{err[-3000:]}")
        result = json.loads(out.strip().splitlines()[-1])
        result["peak_memory"] = {k: round(v, 1) for k, v in peak.items()}
        result["load_avg_before"] = [round(x, 2) for x in load_before]
        result["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
        result["busy_cpus_during"] = round(busy, 2)  # all processes, this run's included
        if "timings" in result:  # CPUs the run's jobs used on average; the rest was other processes
            t = result["timings"]
            job_cpu = t.get("cpu_nodes", 0) + t.get("cpu_ways", 0) + t.get("relation_job", 0)
            result["other_busy_cpus_during_approx"] = round(max(0.0, busy - job_cpu / wall), 2)
        return result


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target-mb", type=float, default=30.0, help="size of the synthesised PBF (MB)")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--rounds", type=int, default=4, help="rounds of new-1w, new-2w (alternated)")
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
    args = p.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0
    t0 = time.perf_counter()
    pbf, mix = synthesise(target_mb=args.target_mb, cache_dir=args.cache_dir)
    synth_s = time.perf_counter() - t0
    n = mix["elements"]
    load_start = os.getloadavg()
    runs: list[dict] = []
    for r in range(args.rounds):
        quiet = wait_quiet(args.wait_quiet) if args.wait_quiet else {}
        for workers in (1, 2):
            res = run_child(f"new-{workers}w", pbf, f"{workers},{BUCKETS}")
            runs.append({"run": f"new-{workers}w", "round": r, **quiet, **res})
            print(
                f"round {r} new-{workers}w {res['seconds']:.1f}s load {res['load_avg_before'][0]}", flush=True
            )
        if r < args.baseline_rounds:
            res = run_child("today", pbf, args.baseline_commit)
            runs.append({"run": "today", "round": r, **res})
            print(f"round {r} today {res['seconds']:.1f}s load {res['load_avg_before'][0]}", flush=True)
    memory = {}
    if args.memory_check:  # same rows per raster part, a quarter of the input: does the peak follow?
        small, small_mix = synthesise(target_mb=args.target_mb / 4, cache_dir=args.cache_dir)
        for name, path, meta, buckets in (("quarter", small, small_mix, 1), ("full", pbf, mix, BUCKETS)):
            res = run_child("new-1w", path, f"1,{buckets}")
            memory[name] = {"bytes": path.stat().st_size, "elements": meta["elements"], "buckets": buckets,
                            "seconds": round(res["seconds"], 2), "peak": res["peak_memory"]}  # fmt: skip
            print(f"memory {name} {res['peak_memory']}", flush=True)
    floors = {}
    if not args.no_floors:
        modes = ["pyosmium_iterate_all", "pyosmium_old_reader_empty_loop", "cpp_decode_and_index",
                 "cpp_decode_index_filter_opl"]  # fmt: skip
        if shutil.which("osmium"):
            modes += ["osmium_cat", "osmium_tags_filter"]
        for mode in modes:
            res = run_child(mode, pbf)
            floors[mode] = {"seconds": round(res["seconds"], 2), "elements_per_s": round(n / res["seconds"]),
                            "load_avg_before": res["load_avg_before"]}  # fmt: skip
            print(f"floor {mode} {res['seconds']:.1f}s", flush=True)

    def rate(run: dict) -> float:
        return n / run["seconds"]

    by = {name: [x for x in runs if x["run"] == name] for name in ("new-1w", "new-2w", "today")}
    r1, r2 = _median([rate(x) for x in by["new-1w"]]), _median([rate(x) for x in by["new-2w"]])
    r_today = _median([rate(x) for x in by["today"]]) if by["today"] else None
    pair_2v1 = [rate(b) / rate(a) for a, b in zip(by["new-1w"], by["new-2w"])]
    others = [max(a.get("other_busy_cpus_during_approx", 9), b.get("other_busy_cpus_during_approx", 9))
              for a, b in zip(by["new-1w"], by["new-2w"])]  # fmt: skip
    quiet_2v1 = [x for x, o in zip(pair_2v1, others) if o < 0.3]
    pair_1vtoday = [rate(a) / rate(t) for a, t in zip(by["new-1w"], by["today"])]
    stats = by["new-1w"][0]["stats"]
    today_share = by["today"][0]["stats"]["tagged_elements"] / n if by["today"] else None
    scaling = _median(pair_2v1)
    efficiency = min(1.0, scaling / 2)
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
            "new_2_workers_over_1_per_round": [round(x, 2) for x in pair_2v1],
            "new_2_workers_over_1_median": round(scaling, 2),
            "new_2_workers_over_1_rounds_without_other_load": [round(x, 2) for x in quiet_2v1],
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
        "runs": [
            {k: v for k, v in x.items() if k != "stats"} | {"elements_per_s": round(rate(x))} for x in runs
        ],
        "stats_new": stats,
        "planet_extrapolation": {
            "elements": PLANET_ELEMENTS,
            "cores": PLANET_CORES,
            "parallel_efficiency_assumed": round(efficiency, 2),
            "hours": round(PLANET_ELEMENTS / (r1 * PLANET_CORES * efficiency) / 3600, 2),
            "hours_single_process": round(PLANET_ELEMENTS / r1 / 3600, 1),
            "today_hours_single_process": round(PLANET_ELEMENTS / r_today / 3600, 1) if r_today else None,
            "note": PLANET_NOTE,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("elements_per_s", "ratios", "planet_extrapolation")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
