"""One benchmark run in a child process, watched from outside: wall time, CPU time, peak memory, load.

:func:`run_child` starts ``bench_osm.py --child MODE …`` (which calls :func:`child`) and samples, every
50 ms, the memory of the child and every process below it (worker processes) from /proc. CPU seconds
come from ``getrusage(RUSAGE_CHILDREN)``: the child, and the workers it joined, once it has exited.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import osmium
import osmium.filter

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_osm.py"
DEFAULT_CACHE = ROOT / "build" / "bench_osm"
#: the commit whose osm/extract.py is "today's" per-element pass (the last one before issue 18)
BASELINE_COMMIT = "85b07414e5f4906d038f3d64348c9a4b6f77e254"
BASELINE_PATH = "packages/olmoearth-data/src/olmoearth_data/osm/extract.py"


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


def child(mode: str, pbf: str, out_dir: str, extra: str) -> None:
    """One timed run in this (child) process; prints a JSON line. The time includes the pass's imports."""
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
        result["import_seconds"] = time.perf_counter() - t0
        t_call = time.perf_counter()
        res = extract_osm(path=pbf, out_dir=out_dir, buckets=buckets, workers=workers)
        result["call_seconds"] = time.perf_counter() - t_call  # the pass alone: no interpreter, no imports
        result["stats"] = res.stats.to_dict()
        result["timings"] = res.timings
    elif mode.startswith("worker_start_"):  # fork / forkserver: this fresh process's first 2-worker pool
        result.update(_worker_start(mode.removeprefix("worker_start_"), pbf, Path(out_dir)))
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


def _worker_start(method: str, pbf: str, work: Path) -> dict:
    """Seconds from creating the pass's 2-worker pool (``method``) until both workers answered a job."""
    from olmoearth_data.osm.blocks import scan_blobs
    from olmoearth_data.osm.nodeindex import NodeIndex
    from olmoearth_data.osm.pool import ProcessPool
    from olmoearth_data.osm.worker import PassConfig

    (work / "spool").mkdir()
    index = NodeIndex("sparse", work / "nodes.idx", work / "nodes.ids")
    cfg = PassConfig(scan_blobs(pbf), work / "spool", 0, True, 1, 1000, 1, index)
    t0 = time.perf_counter()
    pool = ProcessPool(cfg, 2, start_method=method)
    pool.broadcast(("types", 0, 1))  # a job of a few milliseconds, in this process and the worker
    seconds = time.perf_counter() - t0
    pool.close()
    return {"start_seconds": round(seconds, 3)}


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


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_child(mode: str, pbf: Path, extra: str = "") -> dict:
    """Run ``mode`` in a child process; add its process tree's peak memory and CPU seconds, and the load.

    ``cpu_seconds`` (user + system of the child and its worker processes) does not depend on how busy
    the machine is, unlike the wall time: it is the load-independent measure of work per element.
    """
    with tempfile.TemporaryDirectory(dir=DEFAULT_CACHE if DEFAULT_CACHE.exists() else None) as work:
        load_before, cpu_before, t_before = os.getloadavg(), _cpu_sample(), time.perf_counter()
        own_before = _children_cpu_s()
        proc = subprocess.Popen([sys.executable, str(SCRIPT), "--child", mode, str(pbf), work, extra],
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
        result["cpu_seconds"] = round(_children_cpu_s() - own_before, 3)
        result["peak_memory"] = {k: round(v, 1) for k, v in peak.items()}
        result["load_avg_before"] = [round(x, 2) for x in load_before]
        result["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
        result["busy_cpus_during"] = round(busy, 2)  # all processes, this run's included
        # CPUs the other processes kept busy meanwhile (this run's CPU time taken out)
        result["other_busy_cpus_during_approx"] = round(max(0.0, busy - result["cpu_seconds"] / wall), 2)
        return result
