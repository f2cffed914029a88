"""Materialisation CPU cost: process CPU seconds per tile by modality vs the odc-stac read floor.

A twin (the test catalogues: the 2 S2 test tiles + West Oakland, every collection, the maps) runs in
*this* process; the measurement runs in a spawned child process, so ``time.process_time()`` there
counts only the materialiser's CPU (decoding, warping, compositing), never the servers'. Per modality
and tile the child times, after one warm-up pass (search cache filled, GDAL caches warm):

* ``materialise``: :func:`materialise_sample` for that modality alone;
* ``floor``: odc-stac loading the very items that materialisation read (the search's items per
  period, the index's files) into the tile grid in one ``odc.stac.load`` call — pixels read and warped,
  no compositing, no per-item loop, no search.

Writes ``benchmarks/results/materialise_cpu.json`` (machine, versions, commit, per-modality seconds
and ratio). Not part of the test suite: ``.venv/bin/python benchmarks/bench_materialise.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_OUT = Path(__file__).parent / "results" / "materialise_cpu.json"
MODALITIES = ("sentinel2_l2a", "sentinel1", "landsat_l2", "worldcover", "srtm", "cdl",
              "wri_canopy_height_map", "worldcereal")  # fmt: skip


def _items_read(*, name, sample, client, stac_url, cache, refs):
    """The pystac Items materialisation reads for ``name`` on ``sample`` (search / index; untimed)."""
    import pystac

    from olmoearth_data.composite.coverage import select_covering
    from olmoearth_data.materialise.static import STATIC_PERIOD
    from olmoearth_data.modalities import get_modality
    from olmoearth_data.sources import SourceKind, get_source
    from olmoearth_data.stac.catalog import RetryPolicy
    from olmoearth_data.stac.search import search_sample
    from olmoearth_data.stac.tile_index import fetch_index, index_items

    source, spec = get_source(name), get_modality(name)
    if source.kind is SourceKind.TILE_INDEX:
        ref = refs[source.collection]
        doc = fetch_index(ref=ref, retry=RetryPolicy())
        single = source.asset_for(source.bands[0].band)
        return [
            index_items(doc=doc, ref=ref, tile=sample.tile, collection=source.collection, single_asset=single)
        ]
    periods = sample.periods if spec.is_multitemporal else [STATIC_PERIOD]
    found = search_sample(client=client, source=source, tile=sample.tile, periods=periods,
                          stac_url=stac_url, cache=cache)  # fmt: skip
    groups = []
    for p in found:
        chosen = select_covering(p.items, tile=sample.tile) if spec.is_multitemporal else list(p.items)
        groups.append([pystac.Item.from_dict(d, preserve_dict=True) for d in chosen])
    return groups


def _floor(*, name, groups, sample, sign) -> None:
    """odc-stac reads of every item of every group into the tile grid, nothing else."""
    import odc.stac

    from olmoearth_data.cube.layout import nodata_fill
    from olmoearth_data.modalities import get_modality
    from olmoearth_data.sources import get_source

    source, spec = get_source(name), get_modality(name)
    for bs in spec.bandsets:
        assets = [source.asset_for(b) for b in bs.bands]
        resampling = next(b.resampling.value for b in source.bands if b.band == bs.bands[0])
        for items in groups:
            items = [i for i in items if all(a in i.assets for a in assets)]
            if not items:
                continue
            odc.stac.load(items, bands=assets, geobox=sample.tile.geobox(pixel_size_m=bs.pixel_size_m),
                          dtype=spec.dtype, nodata=source.read_nodata if source.read_nodata is not None
                          else nodata_fill(spec), resampling=resampling, groupby="id", patch_url=sign,
                          chunks=None, pool=1)  # fmt: skip


def _child(env: dict, job: dict, queue) -> None:
    os.environ.update(env)
    import rasterio

    from olmoearth_data.build import GDAL_OPTIONS
    from olmoearth_data.grid import Tile
    from olmoearth_data.materialise.sample import materialise_sample
    from olmoearth_data.modalities import get_modality
    from olmoearth_data.samples import Sample
    from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy
    from olmoearth_data.stac.search import SearchCache
    from olmoearth_data.stac.tile_index import TileIndexRef

    refs = {k: TileIndexRef(**v) for k, v in job["refs"].items()}
    config = CatalogConfig(stac_url=job["stac_url"], blob_endpoint=job["assets_url"], tile_indexes=refs,
                           retry=RetryPolicy(attempts=3, backoff_s=0.05))  # fmt: skip
    client, sign, cache = config.open_client(), config.signer(), SearchCache(Path(job["cache"]))
    rows = []
    with rasterio.Env(**GDAL_OPTIONS):
        for tile_id, centre, names in job["samples"]:
            sample = Sample(Tile.from_id(tile_id), dt.date.fromisoformat(centre))
            for name in names:
                kwargs = dict(index=0, sample=sample, specs=[get_modality(name)], client=client,
                              stac_url=config.stac_url, sign=sign, cache=cache, tile_indexes=refs,
                              retry=config.retry)  # fmt: skip
                materialise_sample(**kwargs)  # warm-up: search cache, index, GDAL header caches
                t0 = time.process_time()
                result = materialise_sample(**kwargs)
                cpu = time.process_time() - t0
                groups = _items_read(name=name, sample=sample, client=client, stac_url=config.stac_url,
                                     cache=cache, refs=refs)  # fmt: skip
                _floor(name=name, groups=groups, sample=sample, sign=sign)  # warm-up
                t0 = time.process_time()
                _floor(name=name, groups=groups, sample=sample, sign=sign)
                floor = time.process_time() - t0
                rows.append({"tile": tile_id, "modality": name, "cpu_s": cpu, "floor_s": floor,
                             "items": sum(len(g) for g in groups),
                             "present": int(result.modalities[name].present.sum())})  # fmt: skip
    queue.put(rows)


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    out = {"python": platform.python_version()}
    for pkg in ("odc-stac", "rasterio", "numpy", "pystac-client"):
        out[pkg] = version(pkg)
    import rasterio

    out["gdal"] = rasterio.__gdal_version__
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--cache-dir", type=Path, default=Path("build/bench-materialise"))
    args = parser.parse_args()

    from olmoearth_twin import Twin, generate_maps, generate_sentinel2
    from olmoearth_twin.catalog.collections import generate_collections
    from olmoearth_twin.catalog.samples import SMALL_SAMPLES
    from olmoearth_twin.testing import COLLECTIONS_TEST_SAMPLES

    cache_dir = args.cache_dir.absolute()
    s2 = generate_sentinel2(samples=SMALL_SAMPLES, seed=0, cache_dir=cache_dir)
    other = generate_collections(samples=COLLECTIONS_TEST_SAMPLES, seed=0, cache_dir=cache_dir)
    maps = generate_maps(samples=COLLECTIONS_TEST_SAMPLES, seed=0, cache_dir=cache_dir)
    s2_tiles = {s.tile.id for s in SMALL_SAMPLES}
    samples = []
    for s in COLLECTIONS_TEST_SAMPLES:
        names = [m for m in MODALITIES if m != "sentinel2_l2a" or s.tile.id in s2_tiles]
        samples.append((s.tile.id, str(s.centre), names))
    root = Path(tempfile.mkdtemp(prefix="olmoearth-bench-twin-"))
    os.chmod(root, 0o755)
    search_cache = Path(tempfile.mkdtemp(prefix="olmoearth-bench-search-"))
    try:
        with Twin(root=root, catalog=[s2, other, maps]) as twin:
            refs = {}
            for name, entry in maps.manifest()["tile_indexes"].items():
                base = f"{twin.assets_url}/{entry['account']}/{entry['container']}/"
                refs[name] = {"url": twin.tile_index_url(name), "base": base}
            env = {**{k: str(v) for k, v in twin.env.items()}, "PC_SDK_SUBSCRIPTION_KEY": "bench-key"}
            job = {"stac_url": twin.stac_url, "assets_url": twin.assets_url, "refs": refs,
                   "cache": str(search_cache), "samples": samples}  # fmt: skip
            ctx = mp.get_context("spawn")
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(env, job, queue))
            started = time.perf_counter()
            proc.start()
            rows = queue.get(timeout=3600)
            proc.join()
            wall = time.perf_counter() - started
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(search_cache, ignore_errors=True)

    by_modality = {}
    for name in MODALITIES:
        mine = [r for r in rows if r["modality"] == name]
        if not mine:
            continue
        cpu = sum(r["cpu_s"] for r in mine) / len(mine)
        floor = sum(r["floor_s"] for r in mine) / len(mine)
        by_modality[name] = {"tiles": len(mine), "cpu_s_per_tile": round(cpu, 3),
                             "floor_s_per_tile": round(floor, 3),
                             "ratio": round(cpu / floor, 2) if floor > 0 else None,
                             "items_per_tile": sum(r["items"] for r in mine) / len(mine)}  # fmt: skip
    total_cpu = sum(r["cpu_s"] for r in rows)
    total_floor = sum(r["floor_s"] for r in rows)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True).stdout)
    report = {
        "benchmark": "materialise CPU seconds per tile by modality vs odc-stac read floor",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "versions": _versions(),
        "commit": commit + ("+dirty" if dirty else ""),
        "catalogue": "twin test catalogues: S2 for 2 tiles; other collections and maps for 3 tiles; seed 0",
        "measure": "time.process_time() in a spawned child (twin servers excluded); warm caches",
        "by_modality": by_modality,
        "overall_ratio": round(total_cpu / total_floor, 2) if total_floor else None,
        "goal_ratio": 1.5,
        "wall_s": round(wall, 1),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: report[k] for k in ("by_modality", "overall_ratio", "wall_s")}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
