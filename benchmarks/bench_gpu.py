"""GPU training-step benchmark, ready for the day a GPU is lent: Base and Large in bf16 on one GPU.

Parts (each a list of rows in ``benchmarks/results/gpu_<card>.json``):

1. ``steps``: the trainer's own step (:func:`~olmoearth_model.train.step.accumulate` +
   :func:`~olmoearth_model.train.step.optimizer_step`) at the recipe's rank microbatch (32 samples,
   p = 4, 6 × 6 tokens, T from the 2,250 budget, the nine v1 modalities), bf16 autocast, for
   ``torch.compile`` off/on and fused vs for-each AdamW: samples/s, tokens/s, achieved FLOP/s and MFU
   (:func:`~olmoearth_model.train.metrics.step_flops`: weights + attention at the real lengths), peak
   memory, and host–device syncs per step counted by ``torch.cuda.set_sync_debug_mode("warn")``.
2. ``fsdp2``: the same step with the objective sharded by FSDP2 over the GPUs present (one process
   group of ``torch.cuda.device_count()`` ranks, launched through ``torchrun`` when > 1).
3. ``loader``: the whole trainer (``train()``) for a few steps on a real corpus with loader workers:
   samples/s and the data-wait share, i.e. whether the loader keeps the GPU fed.

``--dry-run`` runs every part on the CPU at tiny sizes (Nano, 2 samples, 2 steps, ``torch.compile``
with the ``eager`` backend, FSDP2 over a 1-process gloo group, a fake corpus) so CI exercises the
code paths; its figures mean nothing and go to ``gpu_dry-run.json``.

Run: ``make bench-gpu`` (``BENCH_GPU_ARGS="--corpus data/demo/default.zarr"``), or ``--help``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import cpu_name, git_commit

from olmoearth_data.modalities import modality_set
from olmoearth_model.budget import timesteps_for_budget, token_slots
from olmoearth_model.losses import LossConfig
from olmoearth_model.synthetic import synthetic_batch
from olmoearth_model.train.build import build_model
from olmoearth_model.train.config import ModelSection, OptimConfig, TrainConfig
from olmoearth_model.train.metrics import FlopModel, peak_flops, step_flops
from olmoearth_model.train.parallel import Parallel, shard_fsdp2
from olmoearth_model.train.step import NonFiniteGuard, ObjectiveModule, accumulate, optimizer_step

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batch(*, batch_size: int, patch_size: int, crop: int, device: torch.device):
    specs = modality_set("v1")
    T = timesteps_for_budget(h=crop, specs=specs)
    host = synthetic_batch(
        specs=specs,
        batch_size=batch_size,
        patch_size=patch_size,
        h=crop,
        timesteps=T,
        rng=np.random.default_rng(0),
    )
    return host, host.to(device), specs


def bench_step(
    *,
    size: str,
    compile: bool,
    fused: bool,
    device: torch.device,
    shape: dict,
    steps: int,
    warmup: int,
    compile_backend: str,
    fsdp_world: int = 0,
    packed: bool = True,
) -> dict:
    """Time the trainer's step; ``fsdp_world`` > 0 shards the objective over that process group first."""
    host, batch, specs = _batch(device=device, **shape)
    model = build_model(ModelSection(size=size), specs=specs).to(device).train()
    model.encoder.packed = model.decoder.packed = packed  # False: the former padded layout (A/B)
    loss = LossConfig()
    objective = ObjectiveModule(model, loss_config=loss)
    mode = "single"
    if fsdp_world:
        shard_fsdp2(objective, device=device, world_size=fsdp_world)
        mode = "fsdp2"
    step_module = torch.compile(objective, backend=compile_backend) if compile else objective
    par = Parallel(step_module=step_module, objective=objective, mode=mode)
    cfg = OptimConfig()
    optimizer = torch.optim.AdamW(
        model.trainable_parameters(),
        lr=cfg.lr,
        betas=cfg.betas,
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
        fused=fused,
        foreach=None if fused else True,
    )
    guard = NonFiniteGuard(device=device)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, syncs = [], []
    for i in range(warmup + steps):
        _sync(device)
        t0 = time.perf_counter()
        with _count_syncs(device) as counted:
            parts = accumulate(
                par, batch, microbatch=shape["batch_size"], loss_config=loss, autocast=autocast
            )
            _optimizer_step(par, model, optimizer, guard, parts, fused=fused)
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            syncs.append(counted[0])
    median = statistics.median(times)
    flops = step_flops(batch=host, flop_model=FlopModel.of(model))
    peak = peak_flops(device)
    slots = token_slots(h=shape["crop"], timesteps=host.timestamps.shape[1], specs=specs)
    return {
        "size": size,
        "compile": compile,
        "optimizer": "fused AdamW" if fused else "for-each AdamW",
        "parallel": f"fsdp2 x{fsdp_world}" if fsdp_world else "single",
        "layout": "packed" if packed else "padded",
        "trainable_params": sum(p.numel() for p in model.trainable_parameters()),
        "step_s_median": median,
        "step_s_min": min(times),
        "samples_per_s": shape["batch_size"] / median,
        "tokens_per_s": shape["batch_size"] * slots / median,
        "flops_per_step": flops,
        "achieved_flops_per_s": flops / median,
        "mfu": None if peak is None else flops / median / peak,
        "peak_mem_gb": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "host_syncs_per_step": None if device.type != "cuda" else statistics.median(syncs),
        "loss": float(parts["loss"]),
    }


def _optimizer_step(par, model, optimizer, guard, parts, *, fused: bool) -> None:
    if fused:
        optimizer_step(par=par, model=model, optimizer=optimizer, guard=guard, parts=parts, max_grad_norm=1.0)
    else:
        from olmoearth_model.train.parallel import clip_gradients

        clip_gradients(model.trainable_parameters(), max_norm=1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


@contextlib.contextmanager
def _count_syncs(device: torch.device):
    """Count host–device synchronisations inside the block (CUDA's sync debug mode warns on each)."""
    counted = [0]
    if device.type != "cuda":
        yield counted
        return
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield counted
        counted[0] = sum("synchroniz" in str(w.message) for w in caught)
    finally:
        torch.cuda.set_sync_debug_mode(0)


def bench_fsdp2(*, args: argparse.Namespace, device: torch.device, shape: dict) -> list[dict]:
    """The step under FSDP2: in-process group of one rank, or every rank of this torchrun job."""
    import torch.distributed as dist

    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        if world == 1:
            store = dist.FileStore(tempfile.mktemp(prefix="bench-gpu-store-"), 1)
            dist.init_process_group(backend, store=store, rank=0, world_size=1)
        else:
            dist.init_process_group(backend)
    try:
        rows = []
        for size in args.sizes:
            rows.append(
                bench_step(
                    size=size,
                    compile=False,
                    fused=True,
                    device=device,
                    shape=shape,
                    steps=args.steps,
                    warmup=args.warmup,
                    compile_backend=args.compile_backend,
                    fsdp_world=world,
                )
            )
        return rows if rank == 0 else []
    finally:
        dist.destroy_process_group()


def bench_loader(*, corpus: Path, args: argparse.Namespace, device: torch.device, run: Path) -> dict:
    """The whole trainer for a few steps on ``corpus``: samples/s and data-wait share from its metrics."""
    from olmoearth_model.data.dataset import BatchDataset, LoaderConfig
    from olmoearth_model.train.loop import train

    complete = BatchDataset(LoaderConfig(corpus=str(corpus), global_batch=1), epoch=0).num_batches()
    batch = max(1, min(args.loader_batch, complete))
    config = TrainConfig.load(ROOT / "pipelines" / "recipe.yaml").updated(
        f"run_dir={run}",
        f"data.corpus={corpus}",
        "data.split=null",
        f"model.size={args.sizes[0]}",
        f"data.global_batch={batch}",
        f"data.microbatch={batch}",
        f"data.num_workers={args.workers}",
        f"schedule.max_steps={args.loader_steps}",
        "schedule.warmup_steps=1",
        "metrics.log_every=1",
        "metrics.probe_every=1000000",
        f"parallel.device={device}",
        "checkpoint.resume=false",
    )
    train(config)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in rows if r["step"] >= 1] or rows  # step 0 pays the workers' start
    return {
        "corpus": str(corpus),
        "size": args.sizes[0],
        "global_batch": batch,
        "num_workers": args.workers,
        "steps": len(rows),
        "samples_per_s_median": statistics.median(r["samples_per_s"] for r in timed),
        "data_wait_share_median": statistics.median(r["data_wait_share"] for r in timed),
        "mfu_median": statistics.median(r["mfu"] for r in timed) if "mfu" in timed[0] else None,
    }


def _summary(r: dict) -> str:
    mfu = "" if r["mfu"] is None else f", MFU {100 * r['mfu']:.1f}%"
    mem = "" if r["peak_mem_gb"] is None else f", peak {r['peak_mem_gb']:.1f} GiB"
    return (
        f"{r['size']} {r.get('layout', 'packed')} compile={r['compile']} {r['optimizer']} {r['parallel']}: "
        f"{r['samples_per_s']:.1f} "
        f"samples/s, {r['tokens_per_s']:.3g} tok/s{mfu}{mem}, syncs/step {r['host_syncs_per_step']}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, few steps (CI)")
    parser.add_argument("--sizes", default="base,large", help="comma-separated (default base,large)")
    parser.add_argument("--batch-size", type=int, default=32, help="rank microbatch (recipe: 32)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=ROOT / "data" / "demo" / "default.zarr")
    parser.add_argument("--workers", type=int, default=8, help="loader workers of the loader part")
    parser.add_argument("--loader-batch", type=int, default=32)
    parser.add_argument("--loader-steps", type=int, default=20)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="eager fused steps only, packed vs padded layout alternated (no compile, FSDP2, loader)",
    )
    parser.add_argument("--fsdp-only", action="store_true", help=argparse.SUPPRESS)  # torchrun re-launch
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    args.compile_backend = "inductor"
    shape = {"batch_size": args.batch_size, "patch_size": 4, "crop": 6}
    if args.dry_run:
        device = torch.device("cpu")
        args.sizes, args.steps, args.warmup, args.workers = "nano", 2, 1, 1
        args.loader_steps, args.loader_batch, args.compile_backend = 3, 2, "eager"
        shape = {"batch_size": 2, "patch_size": 4, "crop": 3}
    elif not torch.cuda.is_available():
        print(
            "bench-gpu: no CUDA device here; run it on a GPU machine, or --dry-run for the CPU check",
            file=sys.stderr,
        )
        return 2
    else:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    args.sizes = [s.strip() for s in args.sizes.split(",")]
    if args.fsdp_only:
        rows = bench_fsdp2(args=args, device=device, shape=shape)
        if rows:
            args.out.write_text(json.dumps(rows))
        return 0

    card = "dry-run" if args.dry_run else torch.cuda.get_device_name(device)
    load_before = os.getloadavg()[0]
    report: dict = {
        "benchmark": "olmoearth-model trainer step on GPU (bf16): steps, FSDP2, loader feed",
        "dry_run": args.dry_run,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "machine": {
            "card": card,
            "gpus": torch.cuda.device_count(),
            "cpu": cpu_name(),
            "cpu_count": os.cpu_count(),
            "load_avg_1m_before": load_before,
        },
        "torch": torch.__version__,
        "batch": {
            **shape,
            "modalities": "v1 (nine, all present)",
            "masking": "modality_cross_random, seed 0",
        },
        "steps": [],
    }
    out = args.out or RESULTS / f"gpu_{card.replace(' ', '_')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        # After every part, so a run cut off by its time limit still leaves what it measured.
        out.write_text(json.dumps(report, indent=2) + "\n")

    if args.quick:
        report["quick"] = []
        for size in args.sizes:
            for round_ in range(2):
                for packed in (True, False):
                    print(f"quick: {size} packed={packed} round {round_} ...", flush=True)
                    row = bench_step(size=size, compile=False, fused=True, device=device, shape=shape,
                                     steps=args.steps, warmup=args.warmup,
                                     compile_backend=args.compile_backend, packed=packed)  # fmt: skip
                    report["quick"].append(row)
                    print("  " + _summary(row), flush=True)
                    save()
        return 0
    for size in args.sizes:
        for compile, fused in ((False, True), (True, True), (False, False)):
            print(f"step: {size} compile={compile} fused={fused} ...", flush=True)
            row = bench_step(
                size=size,
                compile=compile,
                fused=fused,
                device=device,
                shape=shape,
                steps=args.steps,
                warmup=args.warmup,
                compile_backend=args.compile_backend,
            )
            report["steps"].append(row)
            print("  " + _summary(row), flush=True)
            save()
    print("fsdp2 ...", flush=True)
    gpus = torch.cuda.device_count() if device.type == "cuda" else 1
    if gpus > 1:
        import subprocess

        part = Path(tempfile.mktemp(suffix=".json"))
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(gpus),
            __file__,
            "--fsdp-only",
            "--out",
            str(part),
            "--sizes",
            ",".join(args.sizes),
            "--batch-size",
            str(args.batch_size),
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
        ]
        subprocess.run(cmd, check=True)
        report["fsdp2"] = json.loads(part.read_text())
    else:
        report["fsdp2"] = bench_fsdp2(args=args, device=device, shape=shape)
    save()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus
        if args.dry_run:
            from olmoearth_data.testing import write_fake_corpus

            corpus = write_fake_corpus(path=Path(tmp) / "fake.zarr")
        if corpus.exists():
            print(f"loader: {corpus} ...", flush=True)
            report["loader"] = bench_loader(corpus=corpus, args=args, device=device, run=Path(tmp) / "run")
        else:
            report["loader"] = {"skipped": f"no corpus at {corpus} (make demo builds one; or --corpus)"}
    report["machine"]["load_avg_1m_after"] = os.getloadavg()[0]
    save()
    for r in report["steps"] + report["fsdp2"]:
        print(_summary(r))
    print(f"loader: {report['loader']}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
