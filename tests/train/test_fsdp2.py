"""FSDP2 (``parallel: fsdp2``): same training as DDP, exact resume, a plain release export.

Two real ``torchrun`` processes on CPU (gloo). On CPU FSDP2 keeps fp32 weights, so it must compute
what DDP computes; only the summation order of the gradient reduction differs (reduce-scatter vs
all-reduce). Seen: relative differences ≤ 3e-7 over 8 steps; tolerance 1e-5.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import yaml
from safetensors.torch import load_file

from olmoearth_model.batch import Batch
from olmoearth_model.data.dataset import BatchDataset, LoaderConfig
from olmoearth_model.losses import LossConfig
from olmoearth_model.train.build import build_model_for_corpus
from olmoearth_model.train.checkpoint import CHECKPOINT_NAME
from olmoearth_model.train.config import TrainConfig
from olmoearth_model.train.export import load_release
from olmoearth_model.train.parallel import Parallel, shard_fsdp2
from olmoearth_model.train.step import ObjectiveModule, split_batch
from tests.train.conftest import small_config

RTOL = 1e-5  # FSDP2 vs DDP, per logged value (fp32 reduction order only)
COMPARED = ("loss", "patch_a", "patch_b", "contrastive", "grad_norm", "probe_loss", "probe_embedding_std")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
ENV = os.environ | {"OMP_NUM_THREADS": "1"}


def _config(path: Path, corpus: Path, run: Path, *, parallel: str) -> list[str]:
    cfg = small_config(corpus, run, f"parallel.mode={parallel}", "schedule.max_steps=8",
                       "metrics.probe_every=3", "parallel.sync_every=2")  # fmt: skip
    cfg.save(path)
    return [*TORCHRUN, "-m", "olmoearth_model.cli", "train", "--config", str(path)]


def _run(cmd: list[str]) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)
    assert out.returncode == 0, out.stderr[-4000:]


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _embeddings(encoder: torch.nn.Module, corpus: Path) -> torch.Tensor:
    cfg = LoaderConfig(
        corpus=str(corpus), global_batch=2, patch_sizes=(4, 8), crop_tokens=(2, 4), token_budget=400
    )
    batch = BatchDataset(cfg, epoch=0).batch(0)
    with torch.no_grad():
        return encoder.eval()(
            data=batch.data, masks=batch.masks_a, timestamps=batch.timestamps, patch_size=batch.patch_size
        ).pooled


@pytest.mark.slow
def test_fsdp2_trains_like_ddp_resumes_exactly_and_exports_plain_weights(
    fake_corpus: Path, tmp_path: Path
) -> None:
    ddp, fsdp = tmp_path / "ddp", tmp_path / "fsdp"
    _run(_config(tmp_path / "ddp.yaml", fake_corpus, ddp, parallel="ddp"))

    # FSDP2: kill -9 the whole job (torchrun and both ranks) after its step-4 checkpoint...
    cmd = _config(tmp_path / "fsdp.yaml", fake_corpus, fsdp, parallel="fsdp2")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    proc = subprocess.Popen(cmd, env=ENV, start_new_session=True, **quiet)
    metrics, deadline = fsdp / "metrics.jsonl", time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 6:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the job runs in its own session
    proc.wait()
    assert torch.load(fsdp / CHECKPOINT_NAME, weights_only=True)["step"] == 4
    assert not (fsdp / "model.pt").exists(), "the job must have been killed before finishing"
    before_kill = [line for line in metrics.read_text().splitlines() if line.endswith("}")]
    # ...then rerun the same command: it resumes from the checkpoint and finishes.
    _run(cmd)
    assert yaml.safe_load((fsdp / "config.yaml").read_text())["parallel"]["mode"] == "fsdp2"
    lines = metrics.read_text().splitlines()
    # Rows before the checkpoint are kept verbatim (timings included): the job resumed, not restarted.
    assert lines[:4] == before_kill[:4]
    # Steps 4.. were computed twice, by the killed job and from the checkpoint: bit-identical.
    timing = ("samples_per_s", "tokens_per_s", "flops_per_s", "data_wait_share", "eta_s")

    def untimed(line: str) -> dict:
        return {k: v for k, v in json.loads(line).items() if k not in timing}

    assert len(before_kill) >= 6
    assert [untimed(x) for x in lines[4 : len(before_kill)]] == [untimed(x) for x in before_kill[4:]]

    # Same seed, same batches: FSDP2 logs what DDP logs, step by step.
    ddp_rows, fsdp_rows = _rows(ddp), _rows(fsdp)
    assert [r["step"] for r in fsdp_rows] == [r["step"] for r in ddp_rows] == list(range(8))
    assert [r["step"] for r in ddp_rows if "rank_divergence" in r] == [1, 3, 5, 7]  # every sync_every=2
    assert all(r.get("rank_divergence", 0.0) == 0.0 for r in ddp_rows)
    assert not any("rank_divergence" in r for r in fsdp_rows)  # shards differ by design
    for a, b in zip(ddp_rows, fsdp_rows):
        assert b["lr"] == a["lr"]
        assert a.keys() - {"rank_divergence"} == b.keys()
        for key in COMPARED:
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=RTOL), (a["step"], key)
    probes = [r["probe_loss"] for r in fsdp_rows if "probe_loss" in r]
    assert len(probes) == 4, probes  # steps 0, 3, 6 and the last

    # Checkpoint and export hold whole tensors: they load into a fresh, unsharded model.
    config = TrainConfig.load(fsdp / "config.yaml")
    fresh = build_model_for_corpus(config)
    fresh.load_state_dict(torch.load(fsdp / CHECKPOINT_NAME, weights_only=True)["model"])
    final = torch.load(fsdp / "model.pt", weights_only=True)["model"]
    assert final.keys() == fresh.state_dict().keys()
    for name, value in fresh.state_dict().items():
        torch.testing.assert_close(final[name], value, rtol=0, atol=0)
    released = load_file(str(fsdp / "release" / "model.safetensors"))
    assert released.keys() == fresh.encoder.state_dict().keys()
    encoder, meta = load_release(fsdp / "release")
    assert meta["size"] == "nano"
    got = _embeddings(encoder, fake_corpus)
    torch.testing.assert_close(got, _embeddings(fresh.encoder, fake_corpus), rtol=0, atol=0)
    # ...and the FSDP2 weights are DDP's, up to the reduction-order differences above.
    ddp_encoder, _ = load_release(ddp / "release")
    torch.testing.assert_close(got, _embeddings(ddp_encoder, fake_corpus), rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # gloo + FSDP2 setup: ~14 s CPU; the DDP accumulation test is in the fast tier
def test_fsdp2_gradient_accumulation_equals_the_full_batch_gradient(
    fake_corpus: Path, accumulation_batches: dict[str, Batch], tmp_path: Path
) -> None:
    """Microbatches with FSDP2's gradient sync off until the last give the unsharded full-batch gradient.

    One in-process rank (gloo): FSDP2 still shards, gathers and reduce-scatters, and keeps the
    unsynced gradients unsharded between microbatches. Contrastive term and DropPath off (as in the
    DDP accumulation test), on a batch whose samples each have decoded tokens of every modality (as
    there); fp32 summation order differs, hence the tolerance.
    """
    config = TrainConfig().updated(f"data.corpus={fake_corpus}", "loss.contrastive=false")
    loss = LossConfig(contrastive=False)
    batch = accumulation_batches["every"]

    reference = build_model_for_corpus(config).eval()
    (ObjectiveModule(reference, loss_config=loss)(batch)["loss"]).backward()
    expected = {n: p.grad for n, p in reference.named_parameters() if p.grad is not None}

    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    try:
        model = build_model_for_corpus(config).eval()
        objective = ObjectiveModule(model, loss_config=loss)
        shard_fsdp2(objective, device=torch.device("cpu"), world_size=1)
        par = Parallel(step_module=objective, objective=objective, mode="fsdp2")
        micro = split_batch(batch, size=1)
        for i, mb in enumerate(micro):
            with par.gradient_sync(i == len(micro) - 1):
                (par.step_module(mb)["loss"] / len(micro)).backward()
        got = {n: p.grad.full_tensor() for n, p in model.named_parameters() if p.grad is not None}
    finally:
        dist.destroy_process_group()
    assert got.keys() == expected.keys() and len(got) > 10
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)
