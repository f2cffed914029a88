"""`make dataset`: OSM → sample table → corpus (+ sample index) → norm stats, printing the estimate first.

``--catalog pc`` (default) reads Planetary Computer (``PC_SDK_SUBSCRIPTION_KEY`` from the environment
for the collections that need an account). ``--catalog twin`` runs the same steps offline: the twin
generates its catalogue for exactly the sampled tiles and dates (so the build finds items for every
sample) and serves it on loopback while the build runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from olmoearth_data.build import BuildConfig, build_corpus
from olmoearth_data.index import index_path
from olmoearth_data.osm.pipeline import estimate, format_estimate, run_sampling
from olmoearth_data.samples import read_sample_table
from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy
from olmoearth_data.stats import compute_norm_stats


def _twin(*, table: Path, seed: int, stack: ExitStack):
    """Start a twin whose catalogue covers every sample of ``table``; closed with ``stack``."""
    from olmoearth_twin import Twin, generate_sentinel2
    from olmoearth_twin.catalog.collections import generate_collections
    from olmoearth_twin.catalog.samples import Sample as TwinSample

    samples = [TwinSample(s.tile.id, s.centre) for s in read_sample_table(table)]
    cache = Path("build/twin/cache")
    catalog = generate_sentinel2(samples=samples, seed=seed, cache_dir=cache)
    twin = stack.enter_context(Twin(root=Path("build/twin-dataset"), catalog=catalog))
    stack.enter_context(twin.environment())
    # The twin's SAS stand-in accepts any key; the build insists on one for account-only collections.
    os.environ.setdefault("PC_SDK_SUBSCRIPTION_KEY", "twin")
    twin.load_catalog(generate_collections(samples=samples, seed=seed, cache_dir=cache))
    return twin


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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    table, work = data / "samples.parquet", data / "samples.work"
    sampling = dict(out=table, osm=args.osm, per_category=args.samples_per_category, seed=args.seed)
    print("[1/4] estimate (dry run)", flush=True)
    dry = run_sampling(**sampling, work_dir=work, dry_run=True)
    print("      " + format_estimate(estimate(n_samples=dry.n_samples)), flush=True)
    print(f"[2/4] sample table {table}", flush=True)
    res = run_sampling(**sampling, work_dir=work)
    print(f"      {res.n_samples} samples (per-category summary {res.summary})", flush=True)
    corpus = data / f"{args.catalog}.zarr"
    with ExitStack() as stack:
        if args.catalog == "twin":
            twin = _twin(table=table, seed=args.seed, stack=stack)
            catalog = CatalogConfig(stac_url=twin.stac_url, blob_endpoint=twin.assets_url,
                                    retry=RetryPolicy(attempts=4, backoff_s=0.2))  # fmt: skip
        else:
            catalog = CatalogConfig()
        print(f"[3/4] building {corpus} from {catalog.stac_url}", flush=True)
        config = BuildConfig(
            corpus=str(corpus), sample_table=str(table), modalities=args.modalities,
            samples_per_shard=args.samples_per_shard, cache_dir=str(data / "cache"), workers=args.workers,
            scheduler=args.scheduler, catalog=catalog, osm_dir=str(work),
        )  # fmt: skip
        summary = build_corpus(config)
    print(
        f"      {summary.complete} complete, {summary.dropped} dropped, {summary.shards_built} shards built"
    )
    print("[4/4] norm stats", flush=True)
    compute_norm_stats(corpus)
    print(f"\ndone in {time.perf_counter() - t0:.0f} s: corpus {corpus}, index {index_path(corpus)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
