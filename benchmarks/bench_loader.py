"""Loader throughput: samples/s of one loader worker vs the raw Zarr read floor for the same bytes.

Builds batches exactly as a training worker does (crop, timesteps from the token budget, stored →
10 m grid, normalisation, two masked views) in this process — one worker — over the demo corpus,
with the recipe's sampling (p ~ U{1..8}, h ~ U{1..12}, budget 2250). The floor reads the same crop
windows and periods straight from Zarr with nothing else done. Writes benchmarks/results/loader_cpu.json.
Needs a corpus: `make demo` builds data/demo/s2.zarr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import zarr

from olmoearth_model.data.dataset import BatchDataset, LoaderConfig
from olmoearth_model.data.sampling import batch_rng, plan_batch, plan_crop

DEFAULT_OUT = Path(__file__).parent / "results" / "loader_cpu.json"


def _floor(ds: BatchDataset, batches: list[int]) -> tuple[float, int]:
    """Seconds to read the same windows with plain zarr slicing, and samples read."""
    reader, cfg = ds.reader, ds.config
    group = zarr.open_group(cfg.corpus, mode="r")
    n, start = 0, time.perf_counter()
    for b in batches:
        rows, positions = ds.batch_rows(b)
        rng = batch_rng(seed=cfg.seed, epoch=ds.epoch, batch=b)
        plan = plan_batch(
            rng=rng,
            specs=reader.specs,
            patch_sizes=cfg.patch_sizes,
            crop_tokens=cfg.crop_tokens,
            token_budget=cfg.token_budget,
        )
        for row, pos in zip(rows, positions):
            srng = np.random.default_rng([cfg.seed, ds.epoch, b, int(pos) + 1])
            present = np.zeros(12, dtype=bool)
            for s in reader.specs:
                if s.is_multitemporal:
                    present |= reader.present[s.name][row]
            crop = plan_crop(rng=srng, plan=plan, present_any=present)
            for spec in reader.specs:
                for bs in spec.bandsets:
                    k = bs.scale_to_base  # stored pixels per 10 m pixel: 2, 4, or 0.25 (2.5 m)
                    ys, xs = int(crop.y0 / k), int(crop.x0 / k)
                    size = max(1, int(np.ceil(crop.size / k)))
                    arr = group[f"{spec.name}/{bs.name}/data"]
                    for p in (p for p in crop.periods if p < 12) if spec.is_multitemporal else [None]:
                        if p is None:
                            arr[int(row), :, ys : ys + size, xs : xs + size]
                        else:
                            arr[int(row), p, :, ys : ys + size, xs : xs + size]
            n += 1
    return time.perf_counter() - start, n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="data/demo/s2.zarr")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--global-batch", type=int, default=8)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if not Path(args.corpus).exists():
        print(f"error: corpus {args.corpus} not found; run `make demo` first", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    cfg = LoaderConfig(corpus=args.corpus, global_batch=args.global_batch)
    samples = 0
    start = time.perf_counter()
    batch_ids: list[tuple[int, int]] = []
    epoch = 0
    while samples < args.batches * args.global_batch:
        ds = BatchDataset(cfg, epoch=epoch)
        for b in range(ds.num_batches()):
            batch = ds.batch(b)
            samples += batch.batch_size
            batch_ids.append((epoch, b))
            if samples >= args.batches * args.global_batch:
                break
        epoch += 1
    loader_s = time.perf_counter() - start
    floor_s, floor_n = 0.0, 0
    for e in sorted({e for e, _ in batch_ids}):
        ds = BatchDataset(cfg, epoch=e)
        s, n = _floor(ds, [b for ee, b in batch_ids if ee == e])
        floor_s, floor_n = floor_s + s, floor_n + n
    loader_rate, floor_rate = samples / loader_s, floor_n / floor_s
    result = {
        "benchmark": "loader samples/s per worker (crop, 10 m grid, normalise, 2 views) vs raw zarr reads",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "zarr": zarr.__version__,
            "numpy": np.__version__,
        },
        "corpus": args.corpus,
        "modalities": [s.name for s in BatchDataset(cfg, epoch=0).reader.specs],
        "sampling": "recipe: p ~ U{1..8}, h ~ U{1..12}, token budget 2250, modality_cross_random masks",
        "samples": samples,
        "loader_samples_per_s_one_worker": round(loader_rate, 1),
        "raw_read_floor_samples_per_s": round(floor_rate, 1),
        "loader_over_floor_time": round(floor_rate / loader_rate, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "goal": ">= 50 samples/s per worker core",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
