"""The wait for the first batch of each epoch: next epoch's loader started early vs at the boundary.

``train/feed.py`` starts the next epoch's loader ``lookahead_batches(num_workers)`` batches before the
current epoch ends (its spawned workers import torch and open the corpus meanwhile). This benchmark
feeds ``--epochs`` epochs of a fake corpus (``write_fake_corpus``, ``--samples`` samples, global batch
1) with ``--workers`` loader workers while a fixed ``--step-s`` of "compute" follows every batch (a
sleep: the training step the loader overlaps with), once with the early start (``early``) and once with
the lookahead set to 0 (``at_boundary``, the loader of commit c9789ca), alternated ``--rounds`` times.
Reported: the data wait of each epoch's first batch (epochs after the first), the total data wait,
and the wall time. Writes ``benchmarks/results/feed_epochs_cpu.json``. Run: ``make bench-feed``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from provenance import cpu_name, git_commit

import olmoearth_model.train.feed as feed_module
from olmoearth_data.testing import write_fake_corpus
from olmoearth_model.data.dataset import BatchDataset, LoaderConfig
from olmoearth_model.train.checkpoint import TrainState
from olmoearth_model.train.distributed import DistEnv

DEFAULT_OUT = Path(__file__).parent / "results" / "feed_epochs_cpu.json"


def _run(cfg: LoaderConfig, *, workers: int, epochs: int, step_s: float, early: bool) -> dict:
    original = feed_module.lookahead_batches
    if not early:
        feed_module.lookahead_batches = lambda num_workers: 0
    try:
        num_batches = BatchDataset(cfg, epoch=0).num_batches()
        t0 = time.perf_counter()
        fed = feed_module.feed(
            cfg, state=TrainState(), num_batches=num_batches, env=DistEnv(), num_workers=workers
        )
        firsts, total = [], 0.0
        for i in range(epochs * num_batches):
            item = next(fed)
            total += item.data_wait
            if i % num_batches == 0 and i:
                firsts.append(item.data_wait)
            time.sleep(step_s)
        fed.close()
        return {"epoch_start_wait_s": [round(x, 3) for x in firsts], "data_wait_total_s": round(total, 2),
                "wall_s": round(time.perf_counter() - t0, 2), "batches_per_epoch": num_batches}  # fmt: skip
    finally:
        feed_module.lookahead_batches = original


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--samples", type=int, default=24)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--step-s", type=float, default=0.25, help="seconds of simulated compute per batch")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    runs: dict[str, list[dict]] = {"early": [], "at_boundary": []}
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_fake_corpus(path=Path(tmp) / "fake.zarr", n_samples=args.samples)
        cfg = LoaderConfig(
            corpus=str(corpus), global_batch=1, patch_sizes=(4, 8), crop_tokens=(2, 4), token_budget=400
        )
        for r in range(args.rounds):
            for name in ("early", "at_boundary") if r % 2 == 0 else ("at_boundary", "early"):
                res = _run(
                    cfg, workers=args.workers, epochs=args.epochs, step_s=args.step_s, early=name == "early"
                )
                runs[name].append(res)
                print(name, res, flush=True)
    med = {k: statistics.median(w for r in v for w in r["epoch_start_wait_s"]) for k, v in runs.items()}
    result = {
        "benchmark": "wait for each epoch's first batch: next epoch's loader started early vs at the end",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "machine": {"cpu": cpu_name(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "torch": torch.__version__,
        "load_avg_before": [round(x, 2) for x in load_before],
        "load_avg_after": [round(x, 2) for x in os.getloadavg()],
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "epoch_start_wait_s_median": {k: round(v, 3) for k, v in med.items()},
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["epoch_start_wait_s_median"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
