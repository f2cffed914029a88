"""CPU training-step benchmark of the Latent MIM model (Nano and Base).

One step = ``zero_grad`` → forward of both views + targets + losses (:func:`latent_mim_objective`) →
``backward`` → grad-norm clip at 1.0 → AdamW step, i.e. what a training loop does per microbatch.

The batch is fixed and documented in the output: B = 8 samples, patch size p = 4, crop h = 6 tokens
(24 × 24 px), T from the 2,250-token budget (9 for v1), the v1 modality set with every modality
present, Gaussian-noise pixels, masks from ``modality_cross_random`` (seed 0). Each size gets warm-up
steps, then timed repeats; the figures go to ``benchmarks/results/model_cpu.json``.

Run with ``make bench`` (or ``.venv/bin/python benchmarks/bench_model.py --help``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from olmoearth_data.modalities import modality_set
from olmoearth_model.budget import timesteps_for_budget, token_slots
from olmoearth_model.nn import build_model
from olmoearth_model.objective import latent_mim_objective
from olmoearth_model.synthetic import synthetic_batch

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "model_cpu.json"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(*args: str) -> str | None:
    """Output of a read-only git command in the repository, None if git or the commit is unavailable."""
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def bench_size(*, size: str, batch, warmup: int, repeats: int) -> dict:
    """Time ``warmup + repeats`` training steps of one size on ``batch``; returns the figures."""
    torch.manual_seed(0)
    model = build_model(size=size, modalities="v1").train()
    params = model.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.02)
    steps: list[dict[str, float]] = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        out = latent_mim_objective(model=model, batch=batch)
        t1 = time.perf_counter()
        out.loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        model.update_target()
        t3 = time.perf_counter()
        timing = {"forward_s": t1 - t0, "backward_s": t2 - t1, "optimizer_s": t3 - t2, "step_s": t3 - t0}
        kind = "warm-up" if i < warmup else "timed"
        print(f"  {size} step {i} ({kind}): {timing['step_s']:.3f} s", flush=True)
        if i >= warmup:
            steps.append(timing | {"loss": float(out.loss.detach())})
    step_s = [s["step_s"] for s in steps]
    median = statistics.median(step_s)
    counts = model.parameter_counts()
    return {
        "size": size,
        "trainable_params": counts["trainable"],
        "encoder_params": counts["encoder"],
        "decoder_params": counts["decoder"],
        "warmup_steps": warmup,
        "timed_steps": repeats,
        "step_s_median": median,
        "step_s_mean": statistics.fmean(step_s),
        "step_s_min": min(step_s),
        "step_s_max": max(step_s),
        "forward_s_median": statistics.median(s["forward_s"] for s in steps),
        "backward_s_median": statistics.median(s["backward_s"] for s in steps),
        "optimizer_s_median": statistics.median(s["optimizer_s"] for s in steps),
        "samples_per_s": batch.batch_size / median,
        "steps": steps,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="nano,base", help="comma-separated sizes (default nano,base)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--patch-size", type=int, default=4)
    parser.add_argument("--crop", type=int, default=6, help="crop side in tokens")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    specs = modality_set("v1")
    T = timesteps_for_budget(h=args.crop, specs=specs)
    batch = synthetic_batch(
        specs=specs,
        batch_size=args.batch_size,
        patch_size=args.patch_size,
        h=args.crop,
        timesteps=T,
        rng=np.random.default_rng(0),
    )
    per_view = {
        view: {
            "encoded_tokens_per_sample": sum(int((m == 0).sum()) for m in masks.values()) / batch.batch_size,
            "decoded_tokens_per_sample": sum(int((m == 2).sum()) for m in masks.values()) / batch.batch_size,
        }
        for view, masks in (("a", batch.masks_a), ("b", batch.masks_b))
    }
    load_before = os.getloadavg()
    results = []
    for size in args.sizes.split(","):
        print(f"benchmarking {size} ...", flush=True)
        results.append(bench_size(size=size.strip(), batch=batch, warmup=args.warmup, repeats=args.repeats))
    report = {
        "benchmark": "olmoearth-model training step on CPU (forward + backward + clip + AdamW)",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD") or "uncommitted",
        "git_worktree_dirty": None if (status := _git("status", "--porcelain")) is None else bool(status),
        "machine": {
            "platform": platform.platform(),
            "cpu_model": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_avg_1m_before": load_before[0],
            "load_avg_1m_after": os.getloadavg()[0],
        },
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "batch": {
            "modalities": "v1 (all 9 present, no missing pixels)",
            "batch_size": batch.batch_size,
            "patch_size": args.patch_size,
            "crop_tokens": args.crop,
            "crop_pixels": args.crop * args.patch_size,
            "timesteps": T,
            "token_slots_per_sample": token_slots(h=args.crop, timesteps=T, specs=specs),
            "masking": "modality_cross_random, numpy seed 0",
            "views": per_view,
            "dtype": "float32 (no autocast)",
        },
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for r in results:
        print(
            f"{r['size']}: median {r['step_s_median']:.3f} s/step (fwd {r['forward_s_median']:.3f}, "
            f"bwd {r['backward_s_median']:.3f}, opt {r['optimizer_s_median']:.3f}); "
            f"{r['samples_per_s']:.2f} samples/s"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
