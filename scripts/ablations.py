"""`make ablations`: the paper's ablations measured by probes on the corpus's own maps.

Variants, each trained with the same config, steps and seed on the corpus's ``train`` split, then
evaluated on its ``validation`` split (validation loss + linear/kNN probes, docs/evaluation.md):

- ``lite``: Latent MIM Lite (the recipe), ``ema``: EMA target (full Latent MIM),
- ``random_masking``: random instead of modality-aware masking,
- ``no_contrastive``: without the 0.1 × InfoNCE term,
- ``random_init``: the untrained encoder (the trainer's initialisation) — the floor.

Repeated over ``--seeds`` (data order, crops, masks and init all change with the seed); the table
gives mean ± sample std over seeds. Report what you see, whichever way it goes: a few dozen CPU steps
of Nano on an 8-sample corpus is a small experiment, and the numbers say how small.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from olmoearth_model.evaluation import evaluate_in_loop
from olmoearth_model.train.build import build_model
from olmoearth_model.train.config import TrainConfig
from olmoearth_model.train.loop import train
from olmoearth_model.train.plot import read_metrics

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from provenance import portable_path  # the benchmarks' helper (benchmarks/ is not a package)

#: Arguments that are paths: recorded relative to the repository (or as ``<scratch>/name``).
PATH_ARGS = ("corpus", "config", "out", "record")
VARIANTS: dict[str, list[str]] = {
    "lite": [],
    "ema": ["model.target=ema"],
    "random_masking": ["masking.strategy=random"],
    "no_contrastive": ["loss.contrastive=false"],
}
#: Columns of the table (lower is better for losses and RMSE).
COLUMNS = (
    "val_loss", "val_patch", "probe/worldcover/miou", "probe/worldcereal/acc", "probe/worldcereal/f1",
    "probe/srtm/rmse", "probe/canopy_height/rmse", "knn/worldcover/acc", "probe_effective_rank",
)  # fmt: skip


def _evaluation(args: argparse.Namespace) -> list[str]:
    return [f"evaluation.every_steps={args.steps}", "evaluation.split=validation",
            "evaluation.score_split=null", f"evaluation.probe_steps={args.probe_steps}",
            f"evaluation.token_budget={args.token_budget}", "evaluation.timesteps=4"]  # fmt: skip


def _train_variant(args: argparse.Namespace, name: str, seed: int) -> dict[str, float]:
    overrides = [f"data.corpus={args.corpus}", "data.split=train", f"data.global_batch={args.global_batch}",
                 f"data.microbatch={args.global_batch}", f"data.token_budget={args.token_budget}",
                 f"data.seed={3622 + seed}", f"model.init_seed={12536 + seed}",
                 f"run_dir={Path(args.out) / f'{name}-seed{seed}'}", f"schedule.max_steps={args.steps}",
                 f"schedule.warmup_steps={max(1, args.steps // 10)}", "checkpoint.resume=false",
                 f"checkpoint.every_steps={args.steps}", f"metrics.probe_every={args.steps}",
                 *_evaluation(args), *VARIANTS[name]]  # fmt: skip
    run = train(TrainConfig.load(args.config, overrides=overrides))
    rows = read_metrics(Path(run) / "metrics.jsonl")
    if rows[-1]["step"] < args.steps - 1:  # train() returns early on SIGTERM: stop, not the next variant
        raise SystemExit(
            f"{name} seed {seed} stopped at step {rows[-1]['step']} (SIGTERM?); results so far kept"
        )
    last = {
        k: v for r in rows for k, v in r.items() if k in COLUMNS or k.startswith(("probe/", "knn/", "val_"))
    }
    return {**last, "train_loss_last": rows[-1]["loss"]}


def _random_init(args: argparse.Namespace, seed: int) -> dict[str, float]:
    overrides = [f"data.corpus={args.corpus}", f"model.init_seed={12536 + seed}", *_evaluation(args)]
    config = TrainConfig.load(args.config, overrides=overrides)
    from olmoearth_model.data.reader import CorpusReader

    model = build_model(config.model, specs=CorpusReader(args.corpus).specs)
    cpu = torch.device("cpu")
    return evaluate_in_loop(model=model, corpus=args.corpus, settings=config.evaluation, device=cpu, step=0)


def table(results: dict[str, list[dict[str, float]]]) -> str:
    """Markdown table: one row per variant, mean ± std over seeds of every column present."""
    cols = [c for c in COLUMNS if any(c in r for runs in results.values() for r in runs)]
    lines = ["| variant | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, runs in results.items():
        cells = []
        for c in cols:
            v = np.asarray([r[c] for r in runs if c in r], dtype=float)
            cells.append(
                "–"
                if not len(v)
                else f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"
                if len(v) > 1
                else f"{v[0]:.3f}"
            )
        lines.append(f"| {name} (n={len(runs)}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="data/demo/default.zarr")
    parser.add_argument("--config", default="pipelines/demo.yaml")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first…first+seeds−1")
    parser.add_argument("--global-batch", type=int, default=4)
    parser.add_argument("--token-budget", type=int, default=400)
    parser.add_argument("--probe-steps", type=int, default=200)
    parser.add_argument("--variants", default="random_init," + ",".join(VARIANTS))
    parser.add_argument("--out", default="runs/ablations")
    parser.add_argument("--record", default="benchmarks/results/ablations.json")
    args = parser.parse_args(argv)
    if not Path(args.corpus).exists():
        sys.path.insert(0, str(Path(__file__).parent))
        from demo import build_demo_corpus  # the twin-built demo corpus, as `make demo` makes it

        args.corpus = str(build_demo_corpus(data=Path(args.corpus).parent, tiles=8, seed=0))
    results: dict[str, list[dict[str, float]]] = {}
    started = time.time()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for name in args.variants.split(","):
            print(f"[{time.time() - started:6.0f} s] {name} seed {seed}", flush=True)
            run = _random_init(args, seed) if name == "random_init" else _train_variant(args, name, seed)
            results.setdefault(name, []).append(run)
            _write(args, results, started)
    print(table(results))
    return 0


def _write(args: argparse.Namespace, results: dict, started: float) -> None:
    record = {
        "experiment": "ablations measured by probes (train split → validation split of the corpus)",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "torch": torch.__version__,
        "setup": {k: portable_path(v) if k in PATH_ARGS else v for k, v in vars(args).items()},
        "seconds": time.time() - started,
        "table": table(results),
        "runs": results,
    }
    Path(args.record).parent.mkdir(parents=True, exist_ok=True)
    Path(args.record).write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    sys.exit(main())
