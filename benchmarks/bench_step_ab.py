"""CPU training step of this tree's trainer vs another checkout's (A/B, alternated in one run).

``--base DIR`` is a read-only checkout of the previous commit (e.g. ``git worktree add /tmp/base
HEAD`` before the change); each round runs the same steps once with its code and once with this
tree's, each in a fresh subprocess importing ``olmoearth_model`` from the respective ``src`` (one
torch thread), alternating so that machine load hits both alike. The batch is bench_model.py's: 8
samples, p = 4, 6 × 6 tokens, T from the 2,250 budget, the nine v1 modalities, seed 0. The step is each
trainer's own: microbatch accumulation + gradient clipping + AdamW (+ the new non-finite guard).
Writes ``benchmarks/results/model_step_ab.json``: per size the median step time of each side, their
ratio, and the per-step losses of both (equal within float tolerance: fused vs for-each AdamW).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = "packages/olmoearth-model/src"

WORKER = r"""
import contextlib, json, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from olmoearth_data.modalities import modality_set
from olmoearth_model.budget import timesteps_for_budget
from olmoearth_model.losses import LossConfig
from olmoearth_model.nn import build_model
from olmoearth_model.synthetic import synthetic_batch
size, steps = sys.argv[1], int(sys.argv[2])
specs = modality_set("v1")
T = timesteps_for_budget(h=6, specs=specs)
rng = np.random.default_rng(0)
batch = synthetic_batch(specs=specs, batch_size=8, patch_size=4, h=6, timesteps=T, rng=rng)
torch.manual_seed(0)
model = build_model(size=size, modalities="v1").train()
loss = LossConfig()
null = contextlib.nullcontext()
try:
    from olmoearth_model.train.step import NonFiniteGuard, ObjectiveModule, accumulate
    from olmoearth_model.train.step import build_optimizer, optimizer_step
    from olmoearth_model.train.config import OptimConfig
    from olmoearth_model.train.parallel import Parallel
    obj = ObjectiveModule(model, loss_config=loss)
    par = Parallel(step_module=obj, objective=obj, mode="single")
    opt = build_optimizer(list(model.trainable_parameters()), config=OptimConfig(lr=1e-4))
    guard = NonFiniteGuard(device=torch.device("cpu"))
    def step():
        parts = accumulate(par, batch, microbatch=8, loss_config=loss, autocast=null)
        optimizer_step(par=par, model=model, optimizer=opt, guard=guard, parts=parts, max_grad_norm=1.0)
        return float(parts["loss"])
except ImportError:  # the previous trainer
    from olmoearth_model.train.loop import ObjectiveModule, _accumulate
    from olmoearth_model.train.parallel import Parallel, clip_gradients
    obj = ObjectiveModule(model, loss_config=loss)
    par = Parallel(step_module=obj, objective=obj, mode="single")
    opt = torch.optim.AdamW(model.trainable_parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.02)
    def step():
        parts = _accumulate(par, batch, size=8, autocast=null)
        clip_gradients(model.trainable_parameters(), max_norm=1.0)
        opt.step(); opt.zero_grad(set_to_none=True); model.update_target()
        return parts["loss"]
times, losses = [], []
for i in range(steps + 1):
    t = time.perf_counter(); losses.append(step()); dt = time.perf_counter() - t
    if i: times.append(dt)
print(json.dumps({"times": times, "losses": losses}))
"""


def run(code: Path, size: str, steps: int) -> dict:
    env = os.environ | {"PYTHONPATH": str(code / SRC), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", WORKER, size, str(steps)], env=env, capture_output=True,
                         text=True, check=True, cwd=code)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="checkout of the previous commit")
    parser.add_argument("--sizes", default="nano,base")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per subprocess (after 1 warm-up)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "model_step_ab.json")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from provenance import cpu_name, git_commit

    base_commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=args.base, capture_output=True, text=True)
    load = [os.getloadavg()[0]]
    results = {}
    for size in args.sizes.split(","):
        sides = {"base": {"times": [], "losses": None}, "new": {"times": [], "losses": None}}
        for r in range(args.rounds):
            for side, code in (
                (("base", args.base), ("new", ROOT)) if r % 2 == 0 else (("new", ROOT), ("base", args.base))
            ):
                got = run(code, size, args.steps)
                sides[side]["times"] += got["times"]
                sides[side]["losses"] = got["losses"]
                print(f"{size} round {r} {side}: {statistics.median(got['times']):.3f} s/step", flush=True)
            load.append(os.getloadavg()[0])
        med = {s: statistics.median(v["times"]) for s, v in sides.items()}
        diffs = [abs(a - b) / abs(a) for a, b in zip(sides["base"]["losses"], sides["new"]["losses"])]
        results[size] = {
            "step_s_median_base": med["base"],
            "step_s_median_new": med["new"],
            "speedup": med["base"] / med["new"],
            "losses_base": sides["base"]["losses"],
            "losses_new": sides["new"]["losses"],
            "loss_max_rel_diff": max(diffs),
            "times_base": sides["base"]["times"],
            "times_new": sides["new"]["times"],
        }
        print(f"{size}: base {med['base']:.3f} s, new {med['new']:.3f} s -> {med['base'] / med['new']:.2f}x; "
              f"losses max rel diff {max(diffs):.1e}")  # fmt: skip
    report = {
        "benchmark": "CPU training step, previous trainer vs this tree, alternated subprocesses, 1 thread",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "base_commit": base_commit.stdout.strip(),
        "cpu": cpu_name(),
        "load_avg_1m": load,
        "batch": "8 samples, p=4, 6x6 tokens, T=9 (2,250 budget), v1 (9 modalities, all present), seed 0",
        "rounds": args.rounds,
        "timed_steps_per_round": args.steps,
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
