"""Materialisation over a real network: wall s/sample per worker vs per-request latency (issue #15).

The twin's proxies impose a network profile (:class:`olmoearth_twin.servers.net.NetProfile`) on the
STAC API, the blob server and the SAS API: per-request latency ``L`` with ±20 % jitter, a connection
set-up of ``2 L`` (TCP + TLS), 25 MB/s per connection (none at 0 ms). For each latency of ``--latencies``
and each variant of ``--variants`` (alternated, latency by latency, so both see the same machine load),
one build worker (a spawned process) materialises every sample of the first ``--tiles`` rows of the twin's
default table, one ``default``-set modality at a time as a build worker does, cold: a fresh search
cache per (variant, latency), SAS tokens and tile indexes forgotten, GDAL's ``/vsicurl/`` cache cleared
before each sample. Then the same worker reads the items each sample used with ``odc.stac.load(pool=8)``
(pixels only: no search, no compositing, no CRS check) — the concurrency floor.

Variants: ``sequential`` (one read at a time, the base GDAL options: the path before issue #15),
``concurrent`` (:class:`olmoearth_data.materialise.context.ReadSettings` defaults), ``concurrentN``
(N read tasks at once), ``concurrent-basegdal`` (the defaults without the cloud-COG GDAL options),
``concurrent-vsicurl`` (the defaults with item files read through GDAL's ``/vsicurl/`` instead of the
range reader, :mod:`olmoearth_data.composite.range_reads`).

Measured per (variant, latency): wall s/sample, CPU s/sample (the worker's user+sys), requests/sample by
host (STAC API, blob, SAS) and by modality, bytes/sample, the worker's peak RSS, the floor's wall
s/sample; and whether every array equals the first variant's at 0 ms (bit-identical output). The
extrapolation to ``--extrapolate-samples`` samples on N workers uses the 50 ms figure.

Not part of the suite: ``make bench-network`` (writes ``benchmarks/results/network_cpu.json``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import multiprocessing
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from provenance import cpu_name, git_commit

DEFAULT_OUT = Path(__file__).parent / "results" / "network_cpu.json"
FLOOR_POOL = 8


# --- the worker (a spawned process: imports happen there) ----------------------------------------


def _variant_kwargs(variant: str) -> dict:
    from olmoearth_data.materialise.context import ReadSettings

    if variant == "sequential":
        return {"read": ReadSettings.sequential()}
    if variant == "concurrent":
        return {"read": ReadSettings()}
    if variant == "concurrent-basegdal":  # the GDAL options' own effect
        return {"read": ReadSettings(cloud_gdal=False)}
    if variant == "concurrent-vsicurl":  # the range reader's own effect: item files through /vsicurl/
        return {"read": ReadSettings(range_reads=False)}
    if variant.startswith("concurrent") and variant[len("concurrent") :].isdigit():  # e.g. concurrent16
        return {"read": ReadSettings(max_in_flight=int(variant[len("concurrent") :]))}
    raise ValueError(f"unknown variant {variant!r}")


def _forget_caches() -> None:
    import planetary_computer.sas

    from olmoearth_data.composite.gdal_cache import clear_remote_cache
    from olmoearth_data.stac import tile_index

    planetary_computer.sas.TOKEN_CACHE.clear()
    tile_index._CACHE.clear()
    clear_remote_cache()


def worker_start(variant: str, catalog: dict, cache_dir: str) -> None:
    """Build this worker's materialise context for ``variant`` (a fresh search cache, cold caches)."""
    import pickle

    from olmoearth_data.materialise.context import MaterialiseContext
    from olmoearth_data.stac.search import SearchCache

    global _CONTEXT
    if "_CONTEXT" in globals() and _CONTEXT is not None:
        _CONTEXT.close()
    _forget_caches()
    _CONTEXT = MaterialiseContext.open(
        catalog=pickle.loads(bytes.fromhex(catalog["pickle"])),
        cache=SearchCache(cache_dir),
        osm=None,
        **_variant_kwargs(variant),
    )


_CONTEXT = None


def worker_modality(row: int, modality: str) -> dict:
    """Materialise one modality of sample ``row``: wall and CPU seconds, the result's arrays."""
    from olmoearth_data.composite.gdal_cache import clear_remote_cache
    from olmoearth_data.materialise.sample import materialise_sample
    from olmoearth_data.modalities import modality_set
    from olmoearth_twin.catalog.samples import default_samples

    sample = default_samples(n_tiles=row + 1)[row]
    spec = modality_set([modality])[0]
    if modality == modality_set("default")[0].name:
        clear_remote_cache()  # cold per sample
    cpu0, t0 = time.process_time(), time.perf_counter()
    result = materialise_sample(index=row, sample=sample, specs=[spec], context=_CONTEXT)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    got = result.modalities[spec.name]
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "status": int(result.status),
        "arrays": {k: v for k, v in got.arrays.items()},
        "item_ids": got.item_ids,
        "maxrss_b": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def worker_floor(row: int, items_by_modality: dict[str, list[str]]) -> dict:
    """Read the items a sample used with ``odc.stac.load(pool=8)``: pixels only, per bandset."""
    import odc.stac
    import pystac

    from olmoearth_data.modalities import modality_set
    from olmoearth_data.sources import SourceKind, get_source
    from olmoearth_data.stac.search import SearchCache
    from olmoearth_data.stac.tile_index import fetch_index, index_items
    from olmoearth_twin.catalog.samples import default_samples

    sample = default_samples(n_tiles=row + 1)[row]
    ctx = _CONTEXT
    clear_remote_cache = __import__("olmoearth_data.composite.gdal_cache", fromlist=["x"]).clear_remote_cache
    clear_remote_cache()
    t0 = time.perf_counter()
    for name, ids in items_by_modality.items():
        if not ids:
            continue
        spec, source = modality_set([name])[0], get_source(name)
        wanted = set(ids)
        if source.kind is SourceKind.TILE_INDEX:
            ref = ctx.tile_indexes[source.collection]
            doc = fetch_index(ref=ref, retry=ctx.retry)
            items = [
                i
                for i in index_items(
                    doc=doc,
                    ref=ref,
                    tile=sample.tile,
                    collection=source.collection,
                    single_asset=source.bands[0].asset,
                )
                if i.id in wanted
            ]
        else:
            cache = SearchCache(ctx.cache.root)
            found = {}
            for path in (Path(cache.root) / source.collection).glob(f"{sample.tile.id.replace(':', '-')}__*"):
                for period in json.loads(path.read_text())["periods"]:
                    for d in period["items"]:
                        found.setdefault(d["id"], d)
            items = [
                pystac.Item.from_dict(found[i], preserve_dict=True) for i in sorted(wanted) if i in found
            ]
        for bs in spec.bandsets:  # all the items of a bandset in one load: odc-stac reads them 8 at a time
            assets = [a for a in (source.asset_for(b) for b in bs.bands) if all(a in i.assets for i in items)]
            if assets and items:
                with ctx.gdal_env():
                    odc.stac.load(
                        items,
                        bands=assets,
                        geobox=sample.tile.geobox(pixel_size_m=bs.pixel_size_m),
                        dtype=spec.dtype,
                        groupby="id",
                        patch_url=ctx.sign,
                        chunks=None,
                        pool=FLOOR_POOL,
                        fail_on_error=False,
                    )
    return {"wall_s": time.perf_counter() - t0}


# --- the driver -----------------------------------------------------------------------------------


def _profile(latency_s: float):
    from olmoearth_twin.servers.net import NetProfile

    return NetProfile(
        latency_s=latency_s,
        jitter_s=0.2 * latency_s,
        connect_s=2 * latency_s,
        bandwidth_bps=25e6 if latency_s else 0.0,
    )


def _counts(twin) -> dict[str, tuple[int, int]]:
    return {k: (s.requests, s.bytes_out) for k, s in twin.fault_stats.items()}


def _diff(after: dict, before: dict) -> tuple[dict[str, int], int]:
    reqs = {k: after[k][0] - before[k][0] for k in after}
    return reqs, sum(after[k][1] - before[k][1] for k in after)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--cache-dir", type=Path, default=Path("build/bench-network"))
    parser.add_argument("--tiles", type=int, default=3, help="first N rows of the twin's default samples")
    parser.add_argument("--latencies", default="0,25,50,100", help="per-request latencies, ms")
    parser.add_argument("--variants", default="sequential,concurrent")
    parser.add_argument("--modalities", default="default")
    parser.add_argument("--extrapolate-samples", type=int, default=285_000)
    parser.add_argument("--extrapolate-workers", default="32,64,128")
    args = parser.parse_args()

    import pickle

    import numpy as np

    from olmoearth_data.modalities import modality_set
    from olmoearth_data.sources import SourceKind, get_source
    from olmoearth_data.stac.catalog import CatalogConfig
    from olmoearth_data.stac.retry import RetryPolicy
    from olmoearth_data.stac.tile_index import TileIndexRef
    from olmoearth_twin import Twin, generate_maps, generate_sentinel2
    from olmoearth_twin.catalog.collections import generate_collections
    from olmoearth_twin.catalog.samples import default_samples
    from olmoearth_twin.servers.net import NetProfile

    latencies = [float(x) / 1000 for x in args.latencies.split(",")]
    variants = args.variants.split(",")
    specs = [s for s in modality_set(args.modalities) if get_source(s.name).kind is not SourceKind.OSM]
    load_before = os.getloadavg()
    rows = default_samples(n_tiles=args.tiles)
    cache = args.cache_dir.absolute()
    catalogues = [
        generate_sentinel2(samples=rows, seed=0, cache_dir=cache),
        generate_collections(samples=rows, seed=0, cache_dir=cache),
        generate_maps(samples=rows, seed=0, cache_dir=cache),
    ]
    root = Path(tempfile.mkdtemp(prefix="olmoearth-bench-network-twin-"))
    os.chmod(root, 0o755)  # as root, PostgreSQL runs as an unprivileged user
    work = Path(tempfile.mkdtemp(prefix="olmoearth-bench-network-"))
    runs: dict[str, dict[str, dict]] = {v: {} for v in variants}
    reference: dict[tuple[int, str], dict] = {}
    identical: dict[str, bool] = {v: True for v in variants}
    try:
        with Twin(root=root, catalog=catalogues, net=NetProfile()) as twin, twin.environment():
            os.environ.setdefault("PC_SDK_SUBSCRIPTION_KEY", "bench-key")  # the SAS stand-in takes any key
            refs = {}
            for name, entry in catalogues[2].manifest()["tile_indexes"].items():
                base = f"{twin.assets_url}/{entry['account']}/{entry['container']}/"
                refs[name] = TileIndexRef(url=twin.tile_index_url(name), base=base)
            catalog = CatalogConfig(
                stac_url=twin.stac_url,
                blob_endpoint=twin.assets_url,
                tile_indexes=refs,
                sas_url=twin.sas_url,
                retry=RetryPolicy(attempts=3, backoff_s=0.05),
            )
            blob = {"pickle": pickle.dumps(catalog).hex()}
            ctx = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                for latency in latencies:
                    for variant in variants:
                        twin.set_net(_profile(latency))
                        run_cache = work / f"cache-{variant}-{latency}"
                        pool.submit(worker_start, variant, blob, str(run_cache)).result()
                        per_sample = []
                        for r in range(len(rows)):
                            sample_rec = {
                                "wall_s": 0.0,
                                "cpu_s": 0.0,
                                "requests": {},
                                "bytes": 0,
                                "by_modality": {},
                            }
                            used: dict[str, list[str]] = {}
                            for spec in specs:
                                before = _counts(twin)
                                got = pool.submit(worker_modality, r, spec.name).result()
                                reqs, nbytes = _diff(_counts(twin), before)
                                sample_rec["wall_s"] += got["wall_s"]
                                sample_rec["cpu_s"] += got["cpu_s"]
                                sample_rec["bytes"] += nbytes
                                for k, n in reqs.items():
                                    sample_rec["requests"][k] = sample_rec["requests"].get(k, 0) + n
                                sample_rec["by_modality"][spec.name] = {
                                    "requests": sum(reqs.values()),
                                    "wall_s": round(got["wall_s"], 3),
                                }
                                sample_rec["maxrss_b"] = got["maxrss_b"]
                                used[spec.name] = sorted({i for ids in got["item_ids"] for i in ids})
                                key = (r, spec.name)
                                if key not in reference:
                                    reference[key] = got["arrays"]
                                else:
                                    same = all(
                                        np.array_equal(reference[key][k], got["arrays"][k], equal_nan=True)
                                        for k in reference[key]
                                    )
                                    identical[variant] = identical[variant] and same
                            before = _counts(twin)
                            sample_rec["floor_wall_s"] = pool.submit(worker_floor, r, used).result()["wall_s"]
                            sample_rec["floor_requests"] = sum(_diff(_counts(twin), before)[0].values())
                            per_sample.append(sample_rec)
                        n = len(per_sample)
                        summary = {
                            "wall_s_per_sample": round(sum(s["wall_s"] for s in per_sample) / n, 2),
                            "cpu_s_per_sample": round(sum(s["cpu_s"] for s in per_sample) / n, 2),
                            "requests_per_sample": round(
                                sum(sum(s["requests"].values()) for s in per_sample) / n, 1
                            ),
                            "requests_per_sample_by_host": {
                                k: round(sum(s["requests"].get(k, 0) for s in per_sample) / n, 1)
                                for k in per_sample[0]["requests"]
                            },
                            "requests_per_sample_by_modality": {
                                m: round(sum(s["by_modality"][m]["requests"] for s in per_sample) / n, 1)
                                for m in per_sample[0]["by_modality"]
                            },
                            "wall_s_per_sample_by_modality": {
                                m: round(sum(s["by_modality"][m]["wall_s"] for s in per_sample) / n, 2)
                                for m in per_sample[0]["by_modality"]
                            },
                            "bytes_per_sample": round(sum(s["bytes"] for s in per_sample) / n),
                            "floor_pool8_wall_s_per_sample": round(
                                sum(s["floor_wall_s"] for s in per_sample) / n, 2
                            ),
                            "floor_requests_per_sample": round(
                                sum(s["floor_requests"] for s in per_sample) / n, 1
                            ),
                            "peak_worker_rss_gb": round(max(s["maxrss_b"] for s in per_sample) / 2**30, 3),
                        }
                        runs[variant][f"{latency * 1000:g}ms"] = summary
                        print(variant, f"{latency * 1000:g} ms", json.dumps(summary), flush=True)
            load_after = os.getloadavg()
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    ratios = {}
    for variant, by_latency in runs.items():
        zero = by_latency.get("0ms")
        ratios[variant] = {
            lat: {
                "vs_own_0ms": round(s["wall_s_per_sample"] / zero["wall_s_per_sample"], 2) if zero else None,
                "vs_pool8_floor": round(s["wall_s_per_sample"] / s["floor_pool8_wall_s_per_sample"], 2),
            }
            for lat, s in by_latency.items()
        }
    extrapolation = {}
    for variant, by_latency in runs.items():
        at50 = by_latency.get("50ms")
        if at50:
            extrapolation[variant] = {
                f"{w}_workers_hours": round(
                    args.extrapolate_samples * at50["wall_s_per_sample"] / w / 3600, 1
                )
                for w in (int(x) for x in args.extrapolate_workers.split(","))
            }
    report = {
        "benchmark": "materialise over a network profile on the twin: one worker, default set (OSM excluded)",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpu": cpu_name(), "cpus": os.cpu_count()},
        "load_average_1_5_15": {
            "before": [round(v, 2) for v in load_before],
            "after": [round(v, 2) for v in load_after],
        },
        "versions": _versions(),
        "commit": git_commit(),
        "samples": args.tiles,
        "modalities": [s.name for s in specs],
        "network": "latency L ±20 % per request, set-up 2 L per connection, 25 MB/s per connection (L > 0)",
        "runs": runs,
        "ratios": ratios,
        "bit_identical_to_first_variant_at_0ms": identical,
        "extrapolation_at_50ms": {"samples": args.extrapolate_samples, **extrapolation},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(
        json.dumps(
            {
                k: report[k]
                for k in ("ratios", "bit_identical_to_first_variant_at_0ms", "extrapolation_at_50ms")
            },
            indent=1,
        )
    )
    return 0


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import rasterio

    out = {"python": platform.python_version(), "gdal": rasterio.__gdal_version__}
    for pkg in ("odc-stac", "rasterio", "numpy", "pystac-client"):
        out[pkg] = version(pkg)
    return out


if __name__ == "__main__":
    sys.exit(main())
