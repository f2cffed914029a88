"""`make dataset`: OSM → sample table → corpus (+ sample index) → norm stats, printing the estimate first.

``--catalog pc`` (default) reads Planetary Computer (``PC_SDK_SUBSCRIPTION_KEY`` from the environment
for the collections that need an account). ``--catalog twin`` runs the same steps offline: the twin
generates every source of the ``default`` set for exactly the sampled tiles and dates — Sentinel-2,
S1/Landsat/WorldCover/NASADEM/CDL, and canopy height + WorldCereal behind their tile indexes
(:func:`olmoearth_twin.full.serve_full_twin`, cached under ``build/twin/cache``) — and serves it on
loopback while the build runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pandas as pd

from olmoearth_data.build import BuildConfig, build_corpus
from olmoearth_data.cli_errors import run_command
from olmoearth_data.index import index_path
from olmoearth_data.osm.pipeline import estimate, format_estimate, run_sampling
from olmoearth_data.preflight import (
    require_account_key,
    require_input,
    require_range,
    require_stac_reachable,
    require_writable,
)
from olmoearth_data.samples import read_sample_table
from olmoearth_data.stac.catalog import CatalogConfig
from olmoearth_data.stats import compute_norm_stats


def _presence_line(index: Path) -> str:
    """Per modality, how many samples hold data (from the sample index), e.g. ``sentinel2_l2a 4/4``."""
    df = pd.read_parquet(index)
    cols = [c for c in df.columns if c.endswith(":present")]
    return "present: " + ", ".join(f"{c.split(':')[0]} {int((df[c] > 0).sum())}/{len(df)}" for c in cols)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--osm", required=True, help="OSM input (.osm.pbf, .osm, .osm.bz2)")
    parser.add_argument("--catalog", choices=("pc", "twin"), default="pc")
    parser.add_argument("--data", default="data/dataset", help="folder of the table, corpus and index")
    parser.add_argument("--samples-per-category", type=int, default=10_000)
    parser.add_argument("--modalities", default="default")
    parser.add_argument("--samples-per-shard", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scheduler", default=None, help="dask scheduler address (default: LocalCluster)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--dates-per-tile", type=int, default=1,
        help="samples per chosen tile, in disjoint years (1 = the reference rule; `olmoearth-data sample`)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    return run_command("make dataset", lambda: _run(args))


def _preflight(args: argparse.Namespace) -> None:
    """Refuse in seconds what would otherwise fail after the OSM pass (hours on a planet file)."""
    require_input(path=args.osm, what="OSM file", hint="OSM=file.osm.pbf")
    require_range(name="--samples-per-category", value=args.samples_per_category, low=1)
    require_range(name="--workers", value=args.workers, low=1)
    require_writable(path=args.data, what="--data")
    if args.catalog == "pc":
        require_account_key(modalities=args.modalities, signing="planetary_computer")
        require_stac_reachable(url=CatalogConfig().stac_url)


def _run(args: argparse.Namespace) -> int:
    _preflight(args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    table, work = data / "samples.parquet", data / "samples.work"
    sampling = dict(out=table, osm=args.osm, per_category=args.samples_per_category, seed=args.seed,
                    dates_per_tile=args.dates_per_tile)  # fmt: skip
    print("[1/4] estimate (dry run)", flush=True)
    dry = run_sampling(**sampling, work_dir=work, dry_run=True)
    print("      " + format_estimate(estimate(n_samples=dry.n_samples)), flush=True)
    print(f"[2/4] sample table {table}", flush=True)
    res = run_sampling(**sampling, work_dir=work)
    print(f"      {res.n_samples} samples (per-category summary {res.summary})", flush=True)
    corpus = data / f"{args.catalog}.zarr"
    with ExitStack() as stack:
        if args.catalog == "twin":
            from olmoearth_twin.full import serve_full_twin

            print("      twin catalogue for the sampled tiles and dates (cached under build/twin/cache)")
            full = stack.enter_context(
                serve_full_twin(samples=read_sample_table(table), seed=args.seed,
                                cache_dir=Path("build/twin/cache"), root=Path("build/twin-dataset"),
                                log=lambda line: print(f"        {line}", flush=True))
            )  # fmt: skip
            catalog = full.catalog
        else:
            catalog = CatalogConfig()
        print(f"[3/4] building {corpus} from {catalog.stac_url}", flush=True)
        config = BuildConfig(
            corpus=str(corpus), sample_table=str(table), modalities=args.modalities,
            samples_per_shard=args.samples_per_shard, cache_dir=str(data / "cache"), workers=args.workers,
            scheduler=args.scheduler, catalog=catalog, osm_dir=str(work),
        )  # fmt: skip
        summary = build_corpus(config, progress=True)
    print(
        f"      {summary.complete} complete, {summary.dropped} dropped, {summary.shards_built} shards built"
    )
    print("      " + _presence_line(index_path(corpus)), flush=True)
    print("[4/4] norm stats", flush=True)
    compute_norm_stats(corpus)
    print(f"\ndone in {time.perf_counter() - t0:.0f} s: corpus {corpus}, index {index_path(corpus)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
