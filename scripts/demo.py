"""`make demo`: a local Planetary Computer twin → a Sentinel-2 corpus → Nano trained on CPU.

Offline and self-contained: starts the twin (PostgreSQL + pgstac + stac-fastapi, SAS stand-in, blob
server) over a generated catalogue, builds the corpus with the real pipeline (pystac-client search,
SAS signing, odc-stac reads, dask.distributed), computes norm stats, trains, and writes a loss plot
and a quicklook. Reruns reuse the cached catalogue and the finished corpus.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from olmoearth_data.build import BuildConfig, build_corpus
from olmoearth_data.quicklook import quicklook
from olmoearth_data.samples import Sample, write_sample_table
from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy
from olmoearth_data.stats import compute_norm_stats
from olmoearth_model.train.config import TrainConfig
from olmoearth_model.train.loop import pick_device, train
from olmoearth_model.train.plot import plot_run, read_metrics
from olmoearth_twin import Twin, default_samples, generate_sentinel2


def build_demo_corpus(*, data: Path, tiles: int, seed: int) -> Path:
    """Generate (or reuse) the twin catalogue, serve it, build and resume the S2 corpus, compute stats."""
    data.mkdir(parents=True, exist_ok=True)
    twin_samples = default_samples(n_tiles=tiles)
    samples = [Sample(s.tile, s.centre) for s in twin_samples]
    table = data / "samples.parquet"
    write_sample_table(table, samples=samples)
    corpus = data / "s2.zarr"
    print(f"[1/4] twin catalogue for {len(samples)} samples (cached under build/twin/cache)", flush=True)
    catalog = generate_sentinel2(samples=twin_samples, seed=seed, cache_dir=Path("build/twin/cache"))
    with Twin(root=Path("build/twin-demo"), catalog=catalog) as twin, twin.environment():
        print(f"      STAC API {twin.stac_url}  blobs {twin.assets_url}  SAS {twin.sas_url}", flush=True)
        print(f"[2/4] building {corpus} from the twin (dask LocalCluster)", flush=True)
        config = BuildConfig(
            corpus=str(corpus), sample_table=str(table), modalities="s2", samples_per_shard=2,
            cache_dir=str(data / "cache"), workers=2,
            catalog=CatalogConfig(stac_url=twin.stac_url, blob_endpoint=twin.assets_url,
                                  retry=RetryPolicy(attempts=4, backoff_s=0.2, timeout_s=30)),
        )  # fmt: skip
        summary = build_corpus(config)
    print(
        f"      {summary.complete} complete, {summary.dropped} dropped, {summary.shards_built} shards built"
    )
    compute_norm_stats(corpus)
    return corpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tiles", type=int, default=8, help="samples in the demo corpus (1..8)")
    parser.add_argument(
        "--steps", type=int, default=None, help="training steps (default: pipelines/demo.yaml)"
    )
    parser.add_argument("--data", default="data/demo", help="where the corpus goes")
    parser.add_argument("--run", default="runs/demo", help="where the training run goes")
    parser.add_argument("--config", default="pipelines/demo.yaml")
    parser.add_argument("--seed", type=int, default=0, help="catalogue seed")
    parser.add_argument("overrides", nargs="*", help="training config overrides, e.g. global_batch=2")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("distributed").setLevel(logging.WARNING)
    t0 = time.perf_counter()
    corpus = build_demo_corpus(data=Path(args.data), tiles=args.tiles, seed=args.seed)

    overrides = [f"corpus={corpus}", f"run_dir={args.run}", *args.overrides]
    if args.steps is not None:
        overrides.append(f"max_steps={args.steps}")
    train_config = TrainConfig.load(args.config, overrides=overrides)
    print(
        f"[3/4] training {train_config.size} for {train_config.max_steps} steps on "
        f"{pick_device(train_config.device)}",
        flush=True,
    )
    run_dir = train(train_config)
    rows = read_metrics(run_dir / "metrics.jsonl")
    probes = [r["probe_loss"] for r in rows if "probe_loss" in r]

    print("[4/4] plots", flush=True)
    loss_png = plot_run(run_dir)
    look_png = quicklook(corpus, sample=0, out=run_dir / "quicklook.png")
    print(f"\ndone in {time.perf_counter() - t0:.0f} s")
    print(f"  corpus     {corpus}   (xr.open_datatree('{corpus}', engine='zarr'))")
    print(f"  run        {run_dir}  (config.yaml, metrics.jsonl, model.pt)")
    print(f"  loss plot  {loss_png}")
    print(f"  quicklook  {look_png}")
    if probes:
        print(f"  probe-batch loss {probes[0]:.4f} → {probes[-1]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
