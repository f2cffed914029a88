"""Loader throughput: samples/s of one loader worker vs the raw read floor for the same bytes.

Builds batches exactly as a training worker does (crop, timesteps from the token budget, stored →
10 m grid, normalisation, two masked views) in this process — one worker, one thread — with the
recipe's sampling (p ~ U{1..8}, h ~ U{1..12}, budget 2250). The floors decode the very same stored
boxes and nothing else (``CorpusReader.read_stored``): once with the loader's direct shard reader,
once through zarr-python. Loader and floors alternate batch by batch, so a busy machine slows them
alike. Writes benchmarks/results/loader_cpu.json (modalities, bytes per sample, load, peak RSS).

The corpus: ``--corpus PATH`` (any built corpus with norm stats); by default ``--corpus realistic``: 32
tiles of the full ``default`` modality set built once under build/bench/ by ``realistic_corpus.py``
from the demo's real Sentinel-2 pixels (``make demo`` first) with the current layout, in a child
process so its memory does not count in the loader's peak RSS. ``--corpus data/demo/default.zarr``
measures the demo's own (smaller) default-set corpus.
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
from provenance import cpu_name, git_commit

from olmoearth_model.data.dataset import BatchDataset, LoaderConfig
from olmoearth_model.data.reader import CorpusReader
from olmoearth_model.data.sampling import batch_rng, plan_batch, plan_crop

HERE = Path(__file__).parent
DEFAULT_OUT = HERE / "results" / "loader_cpu.json"
REALISTIC = Path("build/bench/default-32.zarr")


def _crops(ds: BatchDataset, batch: int):
    """The (row, crop) pairs of ``batch`` — the loader's own draws (sampling.py)."""
    reader, cfg = ds.reader, ds.config
    rows, positions = ds.batch_rows(batch)
    rng = batch_rng(seed=cfg.seed, epoch=ds.epoch, batch=batch)
    plan = plan_batch(rng=rng, specs=reader.specs, patch_sizes=cfg.patch_sizes, crop_tokens=cfg.crop_tokens,
                      token_budget=cfg.token_budget)  # fmt: skip
    for row, pos in zip(rows, positions):
        srng = np.random.default_rng([cfg.seed, ds.epoch, batch, int(pos) + 1])
        present = np.zeros(12, dtype=bool)
        for s in reader.specs:
            if s.is_multitemporal:
                present |= reader.present[s.name][row]
        yield int(row), plan_crop(rng=srng, plan=plan, present_any=present)


def _floor(reader: CorpusReader, ds: BatchDataset, batch: int) -> tuple[float, int]:
    """Seconds to decode batch ``batch``'s stored boxes with ``reader`` (nothing else), and bytes used."""
    crops = list(_crops(ds, batch))
    used, start = 0, time.perf_counter()
    for row, crop in crops:
        used += sum(a.nbytes for a in reader.read_stored(row, crop).values())
    return time.perf_counter() - start, used


def _ensure_corpus(path: Path) -> None:
    if path.exists():
        return
    print(f"building a realistic default-set corpus at {path} (once) …", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(HERE / "realistic_corpus.py"), str(path)], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="realistic", help=f"a corpus, or 'realistic': {REALISTIC}")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--global-batch", type=int, default=8)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    realistic = args.corpus == "realistic"
    corpus = REALISTIC if realistic else Path(args.corpus)
    if realistic:
        _ensure_corpus(corpus)
    if not corpus.exists():
        print(f"error: corpus {corpus} not found (run `make demo`, or omit --corpus)", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    load_start = os.getloadavg()
    cfg = LoaderConfig(corpus=str(corpus), global_batch=args.global_batch)
    zarr_reader = CorpusReader(corpus, direct=False)
    direct_reader = CorpusReader(corpus)
    times = {"loader": 0.0, "floor_direct": 0.0, "floor_zarr": 0.0}
    samples, used, epoch = 0, 0, 0
    BatchDataset(cfg, epoch=0).batch(0)  # warm-up: imports, page cache
    while samples < args.batches * args.global_batch:
        ds = BatchDataset(cfg, epoch=epoch)
        for b in range(ds.num_batches()):
            # who goes first alternates, so neither gains from the other's warm caches
            for step in ("loader", "floors") if b % 2 else ("floors", "loader"):
                if step == "loader":
                    t = time.perf_counter()
                    samples += ds.batch(b).batch_size
                    times["loader"] += time.perf_counter() - t
                else:
                    dt_direct, used_b = _floor(direct_reader, ds, b)
                    times["floor_direct"] += dt_direct
                    times["floor_zarr"] += _floor(zarr_reader, ds, b)[0]
                    used += used_b
            if samples >= args.batches * args.global_batch:
                break
        epoch += 1
    rate = {k: samples / v for k, v in times.items()}
    counters = direct_reader.counters
    meta = dict(zarr.open_group(str(corpus), mode="r").attrs["olmoearth"])
    result = {
        "benchmark": "loader samples/s per worker (crop, 10 m grid, normalise, 2 views) vs raw reads of "
        "the same boxes",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "machine": {
            "platform": platform.platform(),
            "processor": cpu_name(),
            "cpus": os.cpu_count(),
            "load_avg_start": [round(x, 2) for x in load_start],
            "load_avg_end": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "zarr": zarr.__version__,
            "numpy": np.__version__,
        },
        "corpus": str(corpus),
        "corpus_origin": "realistic_corpus.py (real demo S2, other modalities derived)"
        if realistic
        else "given",
        "chunking": meta.get(
            "chunking", "whole tile, one period per chunk (before the chunking measurement)"
        ),
        "samples_per_shard": meta.get("samples_per_shard"),
        "modalities": [s.name for s in direct_reader.specs],
        "sampling": "recipe: p ~ U{1..8}, h ~ U{1..12}, token budget 2250, modality_cross_random masks",
        "samples": samples,
        "loader_samples_per_s_one_worker": round(rate["loader"], 1),
        "raw_read_floor_samples_per_s": round(rate["floor_direct"], 1),
        "zarr_python_floor_samples_per_s": round(rate["floor_zarr"], 1),
        "loader_over_floor_time": round(rate["floor_direct"] / rate["loader"], 2),
        "floor_share_of_loader_time": round(times["floor_direct"] / times["loader"], 2),
        "per_sample_bytes": {
            "disk_read": round(counters.stored_bytes / samples),
            "decoded": round(counters.decoded_bytes / samples),
            "used": round(used / samples),
        },
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "goal": ">= 50 samples/s per worker core",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
