"""Typed config by concern: pipelines load, overlays stay small, values are typed, errors name the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from olmoearth_model.train.config import ConfigError, MetricsConfig, TrainConfig, WandbConfig

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"
SIZES = ("nano", "tiny", "base", "large")


@pytest.mark.parametrize("name", sorted(p.stem for p in PIPELINES.glob("*.yaml")))
def test_every_pipeline_config_loads_and_round_trips(name: str, tmp_path: Path) -> None:
    config = TrainConfig.load(PIPELINES / f"{name}.yaml")
    config.save(tmp_path / "resolved.yaml")
    assert TrainConfig.load(tmp_path / "resolved.yaml") == config
    assert config.parallel.mode == ("fsdp2" if name == "large" else "ddp")
    assert Path(config.run_dir).name == name


def test_size_overlays_hold_only_what_differs_from_the_recipe() -> None:
    recipe = TrainConfig.load(PIPELINES / "recipe.yaml")
    for size in SIZES:
        lines = (PIPELINES / f"{size}.yaml").read_text().splitlines()
        assert len(lines) <= 12, size
        config = TrainConfig.load(PIPELINES / f"{size}.yaml")
        assert config.model.size == size
        # Everything the overlay does not name is the recipe's: data, schedule, masking, loss, ...
        for section in ("data", "schedule", "masking", "loss", "checkpoint", "metrics", "evaluation"):
            assert getattr(config, section) == getattr(recipe, section), (size, section)
    # Released checkpoints' lr/wd (recipe §8.7)
    lr_wd = {
        s: (c.optim.lr, c.optim.weight_decay)
        for s in SIZES
        for c in [TrainConfig.load(PIPELINES / f"{s}.yaml")]
    }
    assert lr_wd == {
        "nano": (1e-3, 0.002),
        "tiny": (2e-4, 0.02),
        "base": (1e-4, 0.02),
        "large": (1e-4, 0.002),
    }


def test_values_are_typed_in_any_yaml_spelling(tmp_path: Path) -> None:
    TrainConfig().save(tmp_path / "c.yaml")
    config = TrainConfig.load(
        tmp_path / "c.yaml",
        overrides=["optim.lr=3e-4", "schedule.max_steps=1_000", "data.global_batch=1e3",
                   "loss.contrastive=off", "data.patch_sizes=[2, 4]", "optim.betas=[0.9, 0.95]",
                   "evaluation.tasks=[srtm]"],
    )  # fmt: skip
    assert config.optim.lr == 3e-4 and isinstance(config.optim.lr, float)
    assert config.schedule.max_steps == 1000 and isinstance(config.schedule.max_steps, int)
    assert config.data.global_batch == 1000 and isinstance(config.data.global_batch, int)
    assert config.loss.contrastive is False
    assert config.data.patch_sizes == (2, 4) and config.optim.betas == (0.9, 0.95)
    assert config.evaluation.tasks == ("srtm",)
    # The same spellings inside a YAML file (PyYAML reads 3e-4 as a string)
    (tmp_path / "d.yaml").write_text("extends: c.yaml\noptim: {lr: 3e-4}\nschedule: {max_steps: '10'}\n")
    loaded = TrainConfig.load(tmp_path / "d.yaml")
    assert loaded.optim.lr == 3e-4 and loaded.schedule.max_steps == 10


def test_new_keys_round_trip_and_override(tmp_path: Path) -> None:
    config = TrainConfig().updated("parallel.mode=fsdp2", "metrics.tensorboard=true",
                                   "metrics.wandb={project: p, mode: online, entity: e}")  # fmt: skip
    config.save(tmp_path / "c.yaml")
    doc = yaml.safe_load((tmp_path / "c.yaml").read_text())
    assert doc["parallel"]["mode"] == "fsdp2"
    assert doc["metrics"]["wandb"] == {"project": "p", "mode": "online", "entity": "e", "name": None}
    assert TrainConfig.load(tmp_path / "c.yaml") == config
    # Overrides reach into a section that is null in the YAML, and can switch it off again.
    TrainConfig().save(tmp_path / "plain.yaml")
    on = TrainConfig.load(tmp_path / "plain.yaml", overrides=["metrics.wandb.project=x"])
    assert on.metrics.wandb == WandbConfig(project="x", mode="offline")
    off = TrainConfig.load(tmp_path / "c.yaml", overrides=["metrics.wandb=null", "metrics.tensorboard=false"])
    assert off.metrics == MetricsConfig()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ('data.global_batch="eight"', r"^data\.global_batch='eight'; expected an integer$"),
        ("schedule.max_steps=ten", r"^schedule\.max_steps='ten'; expected an integer$"),
        ("schedule.max_steps=2.5", r"^schedule\.max_steps=2\.5; expected an integer$"),
        ("optim.lr=fast", r"^optim\.lr='fast'; expected a number"),
        ("loss.contrastive=maybe", r"^loss\.contrastive='maybe'; expected a boolean"),
        ("parallel.mode=zero3", r"^parallel\.mode='zero3'; expected one of 'ddp', 'fsdp2'$"),
        ("model.size=huge", r"^model\.size='huge'; expected one of 'nano'"),
        ("masking.strategy=none", r"^masking\.strategy='none'; expected one of \["),
        ("data.patch_sizes=[1]", r"^data\.patch_sizes=\[1\]; expected 2 values: int, int$"),
        ("data.crop_tokens=[4, 2]", r"^data\.crop_tokens=\[4, 2\]; expected 1 ≤ low ≤ high$"),
        ("metrics.wandb.mode=cloud", r"^metrics\.wandb\.mode='cloud'; expected one of 'offline', 'online'$"),
        ("metrics.wandb.project=''", r"^metrics\.wandb\.project is empty"),
        (
            "metrics.wandb.team=x",
            r"^unknown key 'metrics\.wandb\.team' in metrics\.wandb; valid keys: project",
        ),
        ("metrics.tensorboard.dir=x", r"'metrics\.tensorboard' is a value, not a section"),
        ("metrics=3", r"^metrics=3: expected a mapping"),
        ("metrics.log_every=0", r"^metrics\.log_every=0; must be ≥ 1$"),
        ("checkpoint.every_steps=-5", r"^checkpoint\.every_steps=-5; must be ≥ 1$"),
        ("max_steps=10", r"'max_steps' is now 'schedule\.max_steps' \(e\.g\. schedule\.max_steps=10\)"),
        ("optim.warmup_steps=10", r"'optim\.warmup_steps' is now 'schedule\.warmup_steps'"),
        ("parallel=fsdp2", r"'parallel' is now 'parallel\.mode'"),
    ],
)
def test_bad_values_are_one_line_errors_naming_key_value_and_type(
    override: str, message: str, tmp_path: Path
) -> None:
    TrainConfig().save(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match=message) as err:
        TrainConfig.load(tmp_path / "c.yaml", overrides=[override])
    assert "\n" not in str(err.value)


def test_an_old_flat_config_file_names_the_new_keys(tmp_path: Path) -> None:
    (tmp_path / "old.yaml").write_text("corpus: data/x.zarr\nmax_steps: 10\n")
    with pytest.raises(ConfigError, match=r"^config key 'corpus' is now 'data\.corpus'"):
        TrainConfig.load(tmp_path / "old.yaml")
    (tmp_path / "old2.yaml").write_text("masking: random\n")
    with pytest.raises(
        ConfigError, match=r"'masking' is now the section 'masking': write masking\.strategy: random"
    ):
        TrainConfig.load(tmp_path / "old2.yaml")


def test_cli_prints_a_config_error_as_one_line_and_exits_2(tmp_path: Path) -> None:
    """The README's override example works; a bad value is one line on stderr, exit 2, nothing written."""
    TrainConfig().updated(f"run_dir={tmp_path / 'run'}", f"data.corpus={tmp_path / 'none.zarr'}").save(
        tmp_path / "c.yaml"
    )
    cmd = [sys.executable, "-m", "olmoearth_model.cli", "train", "--config", str(tmp_path / "c.yaml")]
    out = subprocess.run([*cmd, "schedule.max_steps=ten"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert line.endswith("error: schedule.max_steps='ten'; expected an integer"), line
    assert not (tmp_path / "run").exists()


def test_cpu_fallback_fits_the_machine_or_refuses_in_one_line(caplog: pytest.LogCaptureFixture) -> None:
    """``make pretrain CONFIG=nano NGPU=1`` without a GPU: the recipe's 512 batch is refused naming the
    override; with a CPU batch the 12 loader workers are capped to the cores; a warm-up longer than the
    run is warned about."""
    import os

    import torch

    from olmoearth_model.train.build import fit_to_machine
    from olmoearth_model.train.distributed import DistEnv

    cpu, one = torch.device("cpu"), DistEnv()
    nano = TrainConfig.load(PIPELINES / "nano.yaml")
    with pytest.raises(ConfigError, match=r"^data\.global_batch=512 is a GPU batch.*data\.global_batch=8"):
        fit_to_machine(nano, device=cpu, env=one)
    short = nano.updated("data.global_batch=8", "data.microbatch=8", "schedule.max_steps=100")
    with caplog.at_level("WARNING"):
        fitted = fit_to_machine(short, device=cpu, env=one)
    cap = max(0, len(os.sched_getaffinity(0)) - 1)
    assert fitted.data.num_workers == min(12, cap)
    assert "schedule.warmup_steps=8000 ≥ schedule.max_steps=100" in caplog.text
    assert ("data.num_workers 12 ->" in caplog.text) == (cap < 12)
    assert fit_to_machine(short, device=torch.device("meta"), env=one) == short  # a GPU keeps the recipe
