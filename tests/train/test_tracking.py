"""TensorBoard and W&B (offline) receive exactly the scalars of ``metrics.jsonl``; a missing package is
a clear error naming the ``olmoearth-model[tracking]`` extra. Nothing here reaches the network."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from olmoearth_model.train.config import MetricsConfig, TrainConfig
from olmoearth_model.train.tracking import TENSORBOARD_DIR, MissingTrackerError, scalars_of
from tests.train.conftest import small_config


def _read_wandb_records(path: Path) -> list:
    """Every protobuf ``Record`` of a W&B ``run-*.wandb`` file.

    The file is a LevelDB-style log: a 7-byte header (``:W&B``, magic, version), then 32 KiB blocks
    of chunks, each ``crc32 (4) | length (2, little-endian) | type (1) | data``; type 1 is a whole
    record, 2/3/4 the first/middle/last piece of one split across blocks.
    """
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    records, pending, pos = [], b"", 7
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer too short for a chunk header: zero padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending + chunk)
            records.append(record)
            pending = b""
        elif kind in (2, 3):
            pending += chunk
    return records


@pytest.mark.slow
def test_tensorboard_and_wandb_offline_log_the_jsonl_scalars(fake_corpus: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    run = tmp_path / "run"
    config = small_config(
        fake_corpus, run, "schedule.max_steps=5", "data.microbatch=2", "metrics.probe_every=2",
        "schedule.warmup_steps=2", "metrics.tensorboard=true",
        "metrics.wandb={project: olmoearth-test, mode: offline}",
    )  # fmt: skip
    config.save(tmp_path / "config.yaml")
    env = os.environ | {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path / "wandb"), "WANDB_SILENT": "true"}
    (tmp_path / "wandb").mkdir()
    cmd = [sys.executable, "-m", "olmoearth_model.cli", "train", "--config", str(tmp_path / "config.yaml")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-4000:]
    assert TrainConfig.load(run / "config.yaml") == config  # the resolved config, trackers included

    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(5))
    # the console view: one line per `log_every` steps (default 1) on stderr, values from the JSONL
    console = [line for line in out.stderr.splitlines() if line.startswith("step ")]
    # "step 3/5": steps done (the JSONL's 0-based step + 1) out of schedule.max_steps
    assert [line.split()[1] for line in console] == [f"{s + 1}/5" for s in range(5)]
    assert f"loss {rows[-1]['loss']:.4f}" in console[-1]
    expected = {(key, r["step"]): value for r in rows for key, value in scalars_of(r).items()}
    assert {"loss", "lr", "grad_norm", "probe_loss", "probe_effective_rank"} <= {k for k, _ in expected}

    # TensorBoard: float64 scalars, read back with TensorBoard's own reader.
    acc = EventAccumulator(str(run / TENSORBOARD_DIR), size_guidance={"tensors": 0})
    acc.Reload()
    logged = {
        (tag, event.step): float(tensor_util.make_ndarray(event.tensor_proto))
        for tag in acc.Tags()["tensors"]
        for event in acc.Tensors(tag)
    }
    assert logged == expected

    # W&B: the offline run's transaction log holds the config and one history row per step.
    (log_file,) = (tmp_path / "wandb" / "wandb").glob("offline-run-*/run-*.wandb")
    records = _read_wandb_records(log_file)
    (run_record,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run_record.project == "olmoearth-test" and run_record.display_name == "run"
    wandb_config = {u.key: json.loads(u.value_json) for u in run_record.config.update}
    assert wandb_config["model"]["size"] == "nano" and wandb_config["metrics"]["tensorboard"] is True
    history = {}
    for record in records:
        if record.WhichOneof("record_type") == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in record.history.item}
            step = items.pop("_step")
            history.update({(k, step): float(v) for k, v in items.items() if not k.startswith("_")})
    assert history == expected


def test_missing_tracker_package_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With the package unimportable (``sys.modules[name] = None``), training stops before it starts."""
    from olmoearth_model.train.loop import train

    monkeypatch.setitem(sys.modules, "wandb", None)
    config = TrainConfig().updated(
        f"data.corpus={tmp_path / 'no-corpus.zarr'}", f"run_dir={tmp_path / 'run'}", "metrics.wandb.project=p"
    )
    with pytest.raises(MissingTrackerError, match=r"metrics\.wandb.*olmoearth-model\[tracking\]"):
        train(config)
    assert not (tmp_path / "run").exists()  # checked before anything is written

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    config.metrics = MetricsConfig(tensorboard=True)
    with pytest.raises(MissingTrackerError, match=r"metrics\.tensorboard.*olmoearth-model\[tracking\]"):
        train(config)
