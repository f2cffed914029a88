"""A run directory remembers its settings: a changed resume is refused in one line, nothing written.

One real 1-step Nano run on the fake corpus, then resumes that change the batch, the model size or the
corpus (another store: another path, and here another modality set) through ``train()`` and through
the ``olmoearth-model train`` CLI. A refusal must leave every file of the run directory as it was;
``--new-run`` (``checkpoint.resume=false``) starts over, moving the old checkpoint aside.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from olmoearth_data.testing import write_fake_corpus
from olmoearth_model.train.config import TrainConfig
from olmoearth_model.train.loop import train
from olmoearth_model.train.run_dir import (
    PREVIOUS_CHECKPOINT,
    RunMismatchError,
    check_resume,
    run_identity,
    start_run,
)
from tests.train.conftest import small_config


def _snapshot(run: Path) -> dict[str, tuple[int, bytes]]:
    """Every file of the run directory: (mtime ns, bytes)."""
    return {
        str(p.relative_to(run)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in sorted(run.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def finished_run(fake_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainConfig:
    """A 1-step Nano run on the fake corpus (checkpointed at its last step)."""
    config = small_config(fake_corpus, tmp_path_factory.mktemp("runs") / "r", "schedule.max_steps=1",
                          "data.microbatch=2", "data.token_budget=200", "data.patch_sizes=[4, 4]",
                          "data.crop_tokens=[2, 2]")  # fmt: skip
    train(config)
    assert (Path(config.run_dir) / "checkpoint.pt").exists() and (Path(config.run_dir) / "run.json").exists()
    return config


@pytest.fixture(scope="module")
def other_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second (smaller) fake corpus with another modality set: S2 only."""
    return write_fake_corpus(path=tmp_path_factory.mktemp("other") / "s2.zarr", n_samples=3,
                             modalities="sentinel2_l2a", samples_per_shard=2, n_dropped=0)  # fmt: skip


def test_same_settings_and_free_keys_resume(finished_run: TrainConfig) -> None:
    check_resume(finished_run)
    check_resume(
        finished_run.updated(
            "schedule.max_steps=50",
            "data.microbatch=1",
            "data.num_workers=2",
            "metrics.log_every=5",
            "optim.lr=1e-4",
            "parallel.sync_every=3",
        )
    )


@pytest.mark.parametrize(
    ("change", "keys"),
    [
        ({"data.global_batch": 4}, ["data.global_batch"]),
        ({"model.size": "tiny"}, ["model.size"]),
        ({"data.seed": 1, "model.target": "ema"}, ["model.target", "data.seed"]),
    ],
)
def test_changed_settings_are_refused_before_anything_is_written(
    finished_run: TrainConfig, change: dict, keys: list[str]
) -> None:
    run = Path(finished_run.run_dir)
    before = _snapshot(run)
    with pytest.raises(RunMismatchError) as err:
        train(finished_run.updated("schedule.max_steps=3", *(f"{k}={v}" for k, v in change.items())))
    message = str(err.value)
    assert "\n" not in message and message.startswith(
        f"run directory {run} holds a run with other settings ("
    )
    for key in keys:
        section, name = key.split(".")
        assert f"{key}: {getattr(getattr(finished_run, section), name)!r} -> {change[key]!r}" in message
    assert "--new-run" in message
    assert _snapshot(run) == before  # config.yaml, run.json, checkpoint, metrics: untouched


def test_another_corpus_is_refused(finished_run: TrainConfig, other_corpus: Path, tmp_path: Path) -> None:
    run = Path(finished_run.run_dir)
    before = _snapshot(run)
    with pytest.raises(
        RunMismatchError,
        match=r"\(corpus: .* -> .*s2\.zarr', modalities: \[.*'sentinel1'.*\] -> \['sentinel2_l2a'\], "
        r"samples: 7 -> 3\)",
    ):
        train(finished_run.updated(f"data.corpus={other_corpus}"))
    # a copy of the same corpus at another path is another corpus too
    copy = shutil.copytree(finished_run.data.corpus, tmp_path / "copy.zarr")
    with pytest.raises(RunMismatchError, match=r"\(corpus: "):
        check_resume(finished_run.updated(f"data.corpus={copy}"))
    assert _snapshot(run) == before


def test_cli_refuses_in_one_line_and_writes_nothing(finished_run: TrainConfig, tmp_path: Path) -> None:
    run = Path(finished_run.run_dir)
    config = tmp_path / "c.yaml"
    finished_run.updated("data.global_batch=4", "model.size=tiny").save(config)
    before = _snapshot(run)
    cmd = [sys.executable, "-m", "olmoearth_model.cli", "train", "--config", str(config)]
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("olmoearth-model: error: run directory "), refused.stderr[
        -2000:
    ]
    assert "model.size: 'nano' -> 'tiny'" in lines[0] and "data.global_batch: 2 -> 4" in lines[0]
    assert _snapshot(run) == before


def test_new_run_starts_over_and_moves_the_old_checkpoint_aside(
    finished_run: TrainConfig, tmp_path: Path
) -> None:
    from olmoearth_model.cli import _parser

    args = _parser().parse_args(["train", "--config", "c.yaml", "--new-run"])
    assert args.new_run  # the CLI turns it into the override checkpoint.resume=false
    run = Path(shutil.copytree(finished_run.run_dir, tmp_path / "r"))
    old_checkpoint = (run / "checkpoint.pt").read_bytes()
    new = finished_run.updated(f"run_dir={run}", "data.global_batch=4", "checkpoint.resume=false")
    check_resume(new)  # a new run is never refused
    start_run(new)  # what train() does first on rank 0
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["global_batch"] == 4
    assert not (run / "checkpoint.pt").exists(), "the new run must not resume from the old checkpoint"
    assert (run / PREVIOUS_CHECKPOINT).read_bytes() == old_checkpoint
    assert run_identity(new)["data.global_batch"] == 4
