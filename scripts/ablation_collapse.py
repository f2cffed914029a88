"""`make ablation-collapse`: Latent MIM Lite vs the EMA-target variant on the demo corpus.

The paper's central claim is that a frozen random target (Lite) cannot collapse, while an EMA target
of the online encoder can. Both runs use the same corpus, config, seed and number of steps; the
collapse monitor (std and effective rank of pooled probe embeddings) is written to JSON and a PNG.
Report what you see, whatever it is: a few hundred CPU steps of Nano is a small experiment.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from demo import build_demo_corpus

from olmoearth_model.train.config import TrainConfig
from olmoearth_model.train.loop import train
from olmoearth_model.train.plot import read_metrics

CURVES = ("probe_loss", "probe_embedding_std", "probe_effective_rank")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--tiles", type=int, default=8)
    parser.add_argument("--data", default="data/demo")
    parser.add_argument("--out", default="runs/ablation-collapse")
    parser.add_argument("--config", default="pipelines/demo.yaml")
    parser.add_argument("--record", default="benchmarks/results/ablation_collapse.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    corpus = build_demo_corpus(data=Path(args.data), tiles=args.tiles, seed=0)
    out = Path(args.out)
    curves: dict[str, dict[str, list]] = {}
    for target in ("lite", "ema"):
        overrides = [f"data.corpus={corpus}", f"run_dir={out / target}", f"model.target={target}",
                     f"schedule.max_steps={args.steps}", "metrics.probe_every=10",
                     "checkpoint.resume=false"]  # fmt: skip
        print(f"training {target} for {args.steps} steps", flush=True)
        run = train(TrainConfig.load(args.config, overrides=overrides))
        rows = [r for r in read_metrics(run / "metrics.jsonl") if "probe_loss" in r]
        curves[target] = {"step": [r["step"] for r in rows], **{k: [r[k] for r in rows] for k in CURVES}}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key in zip(axes, CURVES):
        for target, c in curves.items():
            ax.plot(c["step"], c[key], "o-", ms=3, label=f"{target} target")
        ax.set_title(key.replace("probe_", "probe "))
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Latent MIM Lite vs EMA target (Nano, demo corpus, same seed and steps)")
    fig.tight_layout()
    fig.savefig(out / "collapse.png", dpi=110)
    summary = {
        t: {k: c[k][-1] for k in CURVES} | {"first_" + k: c[k][0] for k in CURVES} for t, c in curves.items()
    }
    (out / "collapse.json").write_text(json.dumps({"summary": summary, "curves": curves}, indent=2))
    record = {
        "experiment": "Latent MIM Lite vs EMA target (collapse monitor on a fixed probe batch)",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "torch": torch.__version__,
        "setup": {"corpus": str(corpus), "steps": args.steps, "config": args.config},
        "summary": summary,
    }
    Path(args.record).parent.mkdir(parents=True, exist_ok=True)
    Path(args.record).write_text(json.dumps(record, indent=2))
    shutil.copy(out / "collapse.png", Path(args.record).with_suffix(".png"))
    print(json.dumps(summary, indent=2))
    print(f"curves: {out / 'collapse.png'}  data: {out / 'collapse.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
