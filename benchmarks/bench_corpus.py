"""Corpus build end to end on the twin: samples/min, CPU s per sample, bytes per sample per group, peak
worker memory (issue #8).

The benchmark generates (or reuses from ``--cache-dir``) a twin catalogue — Sentinel-2, the other
collections (S1 RTC, Landsat, WorldCover, NASADEM, CDL) and the maps (canopy height, WorldCereal) —
for the first ``--tiles`` rows of the twin's default sample table (the 8 demo tiles + West Oakland by
default), extracts the West Oakland OSM fixture for the OSM raster, starts the twin in *this* process,
starts a dask ``LocalCluster`` (``--workers`` single-threaded processes) and runs
:func:`olmoearth_data.build.build_corpus` against it through ``scheduler=<address>`` with the
``default`` modality set.

Measured:

* ``samples_per_min``: samples / wall time of ``build_corpus`` (corpus metadata → every shard →
  consolidation → sample index); cluster start-up is recorded beside it, not included.
* ``cpu_s_per_sample``: user + system CPU of the worker processes during the build (``getrusage`` in
  each worker before and after, via ``client.run``) plus the building thread's own CPU (metadata,
  consolidation, index), over the samples. The twin's servers (PostgreSQL, stac-fastapi, the blob and
  SAS threads of this process) and the dask scheduler are not counted.
* ``bytes_per_sample``: stored bytes on disk per bandset group (``<modality>/<bandset>``), per
  modality's presence arrays and for the root arrays, divided by the number of samples (absent
  modalities included: their nodata shards are what a corpus stores for them).
* ``peak_worker_rss_gb``: ``ru_maxrss`` of each worker process (its RSS high-water mark since start).

Writes ``benchmarks/results/corpus_cpu.json`` (machine, load average, versions, commit). Not part of
the suite: ``make bench-corpus`` or ``.venv/bin/python benchmarks/bench_corpus.py``.
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
import tempfile
import time
from pathlib import Path

DEFAULT_OUT = Path(__file__).parent / "results" / "corpus_cpu.json"
GOAL_PEAK_GB = 2.0


def _usage() -> dict[str, float]:
    """This process's CPU seconds (user + system) and RSS high-water mark (bytes); run on each worker."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_b": ru.ru_maxrss * 1024}  # Linux: KiB


def _dir_bytes(path: Path, *, skip: frozenset[Path] | set[Path] = frozenset()) -> int:
    return sum(
        p.stat().st_size for p in path.rglob("*") if p.is_file() and not any(s in p.parents for s in skip)
    )


def _group_bytes(corpus: Path, *, n: int) -> dict[str, float]:
    """Stored bytes per sample: each ``modality/bandset``, each modality's own arrays, the root arrays."""
    import zarr

    from olmoearth_data.modalities import registry_from_dict

    meta = zarr.open_group(str(corpus), mode="r").attrs["olmoearth"]
    out: dict[str, float] = {}
    modality_dirs = set()
    for spec in registry_from_dict(meta["modalities"]):
        mdir = corpus / spec.name
        modality_dirs.add(mdir)
        bandset_dirs = {mdir / bs.name for bs in spec.bandsets}
        for bs in spec.bandsets:
            out[f"{spec.name}/{bs.name}"] = _dir_bytes(mdir / bs.name) / n
        out[f"{spec.name} (present, reason, items)"] = _dir_bytes(mdir, skip=bandset_dirs) / n
    out["root arrays (coordinates, status)"] = _dir_bytes(corpus, skip=modality_dirs) / n
    return {k: round(v) for k, v in out.items()}


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import rasterio

    out = {"python": platform.python_version(), "gdal": rasterio.__gdal_version__}
    for pkg in ("dask", "distributed", "zarr", "numcodecs", "odc-stac", "rasterio", "numpy", "xarray"):
        out[pkg] = version(pkg)
    return out


def _commit() -> str:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True).stdout)
    return commit + ("+dirty" if dirty else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--cache-dir", type=Path, default=Path("build/bench-corpus"))
    parser.add_argument("--tiles", type=int, default=9, help="first N rows of the twin's default samples")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples-per-shard", type=int, default=4)
    args = parser.parse_args()

    from dask.distributed import Client

    from olmoearth_data.build import BuildConfig, build_corpus, local_cluster
    from olmoearth_data.index import index_path
    from olmoearth_data.osm.extract import extract_osm
    from olmoearth_data.samples import Sample, write_sample_table
    from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy
    from olmoearth_data.stac.tile_index import TileIndexRef
    from olmoearth_twin import Twin, generate_maps, generate_sentinel2
    from olmoearth_twin.catalog.collections import generate_collections
    from olmoearth_twin.catalog.samples import default_samples
    from olmoearth_twin.fixtures import fixture_path

    load_before = os.getloadavg()
    rows = default_samples(n_tiles=args.tiles)
    cache = args.cache_dir.absolute()
    t0 = time.perf_counter()
    catalogues = [generate_sentinel2(samples=rows, seed=0, cache_dir=cache),
                  generate_collections(samples=rows, seed=0, cache_dir=cache),
                  generate_maps(samples=rows, seed=0, cache_dir=cache)]  # fmt: skip
    generate_s = time.perf_counter() - t0
    root = Path(tempfile.mkdtemp(prefix="olmoearth-bench-corpus-twin-"))
    os.chmod(root, 0o755)  # as root, PostgreSQL runs as an unprivileged user
    work = Path(tempfile.mkdtemp(prefix="olmoearth-bench-corpus-"))
    try:
        extract_osm(path=fixture_path("osm/West-Oakland.osm.bz2"), out_dir=work / "osm")
        write_sample_table(work / "samples.parquet", samples=[Sample(r.tile, r.centre) for r in rows])
        with Twin(root=root, catalog=catalogues) as twin, twin.environment():
            os.environ.setdefault("PC_SDK_SUBSCRIPTION_KEY", "bench-key")  # the SAS stand-in takes any key
            refs = {}
            for name, entry in catalogues[2].manifest()["tile_indexes"].items():
                base = f"{twin.assets_url}/{entry['account']}/{entry['container']}/"
                refs[name] = TileIndexRef(url=twin.tile_index_url(name), base=base)
            t0 = time.perf_counter()
            cluster = local_cluster(workers=args.workers, dashboard=False)  # inherits the twin's environment
            client = Client(cluster)
            cluster_s = time.perf_counter() - t0
            try:
                config = BuildConfig(
                    corpus=str(work / "corpus.zarr"), sample_table=str(work / "samples.parquet"),
                    modalities="default", samples_per_shard=args.samples_per_shard,
                    cache_dir=str(work / "cache"), workers=args.workers, scheduler=cluster.scheduler_address,
                    catalog=CatalogConfig(stac_url=twin.stac_url, blob_endpoint=twin.assets_url,
                                          tile_indexes=refs, retry=RetryPolicy(attempts=3, backoff_s=0.05)),
                    osm_dir=str(work / "osm"),
                )  # fmt: skip
                before = client.run(_usage)
                requests_before = sum(twin.blob_stats.by_status.values())
                thread0, t0 = time.thread_time(), time.perf_counter()
                summary = build_corpus(config)
                wall = time.perf_counter() - t0
                thread_cpu = time.thread_time() - thread0
                after = client.run(_usage)
                blob_requests = sum(twin.blob_stats.by_status.values()) - requests_before
                load_during = os.getloadavg()
            finally:
                client.close()
                cluster.close()
        n = summary.samples
        worker_cpu = {w: after[w]["cpu_s"] - before[w]["cpu_s"] for w in after}
        peaks = {w: after[w]["maxrss_b"] / 2**30 for w in after}
        groups = _group_bytes(work / "corpus.zarr", n=n)
        store_bytes = _dir_bytes(work / "corpus.zarr")
        index_bytes = index_path(work / "corpus.zarr").stat().st_size
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    cpu_total = sum(worker_cpu.values()) + thread_cpu
    report = {
        "benchmark": "corpus build end to end on the twin (default modality set, dask LocalCluster)",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "memory_gb": round(os.sysconf("SC_PAGE_SIZE")
                                                               * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "load_average_1_5_15": {"before": [round(v, 2) for v in load_before],
                                "after_build": [round(v, 2) for v in load_during]},
        "versions": _versions(),
        "commit": _commit(),
        "catalogue": f"twin, seed 0: S2 + S1 RTC + Landsat + WorldCover + NASADEM + CDL + canopy height + "
                     f"WorldCereal for the first {args.tiles} default samples; OSM raster from the West "
                     "Oakland fixture (other tiles: outside its coverage)",
        "build": {"samples": n, "complete": summary.complete, "dropped": summary.dropped,
                  "shards": summary.shards_total, "samples_per_shard": args.samples_per_shard,
                  "workers": args.workers, "threads_per_worker": 1, "max_requests_per_host": 8},
        "samples_per_min": round(n / wall * 60, 2),
        "build_wall_s": round(wall, 1),
        "cluster_start_s": round(cluster_s, 1),
        "catalogue_generation_s": round(generate_s, 1),
        "cpu_s_per_sample": round(cpu_total / n, 2),
        "cpu_s": {"workers": {w.rsplit(":", 1)[-1]: round(c, 1) for w, c in worker_cpu.items()},
                  "building_thread": round(thread_cpu, 1),
                  "parallel_efficiency": round(cpu_total / (wall * args.workers), 2)},
        "cpu_measure": "getrusage(RUSAGE_SELF) user+sys in each worker before/after the build, plus the "
                       "building thread's thread_time(); twin servers and the dask scheduler excluded",
        "bytes_per_sample": groups,
        "store_bytes_per_sample": round(store_bytes / n),
        "index_bytes_per_sample": round(index_bytes / n),
        "peak_worker_rss_gb": round(max(peaks.values()), 3),
        "peak_worker_rss_gb_each": {w.rsplit(":", 1)[-1]: round(p, 3) for w, p in peaks.items()},
        "goal_peak_worker_rss_gb": GOAL_PEAK_GB,
        "blob_requests": blob_requests,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    keys = ("build", "samples_per_min", "build_wall_s", "cpu_s_per_sample", "cpu_s", "peak_worker_rss_gb",
            "store_bytes_per_sample", "bytes_per_sample", "load_average_1_5_15")  # fmt: skip
    print(json.dumps({k: report[k] for k in keys}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
