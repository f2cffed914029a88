"""Typed config: YAML + ``key.sub=value`` overrides, new keys round-trip, bad values are clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from olmoearth_model.train.config import MetricsConfig, TrainConfig, WandbConfig

PIPELINES = Path(__file__).resolve().parents[2] / "pipelines"


@pytest.mark.parametrize("name", sorted(p.stem for p in PIPELINES.glob("*.yaml")))
def test_every_pipeline_config_loads_and_round_trips(name: str, tmp_path: Path) -> None:
    config = TrainConfig.load(PIPELINES / f"{name}.yaml")
    config.save(tmp_path / "resolved.yaml")
    assert TrainConfig.load(tmp_path / "resolved.yaml") == config
    assert config.parallel == ("fsdp2" if name == "large" else "ddp")


def test_new_keys_round_trip_and_override(tmp_path: Path) -> None:
    config = TrainConfig(
        parallel="fsdp2",
        metrics=MetricsConfig(tensorboard=True, wandb=WandbConfig(project="p", mode="online", entity="e")),
    )
    config.save(tmp_path / "c.yaml")
    doc = yaml.safe_load((tmp_path / "c.yaml").read_text())
    assert doc["parallel"] == "fsdp2"
    assert doc["metrics"] == {
        "tensorboard": True,
        "wandb": {"project": "p", "mode": "online", "entity": "e", "name": None},
    }
    assert TrainConfig.load(tmp_path / "c.yaml") == config

    # Overrides reach into a section that is null in the YAML, and can switch it off again.
    TrainConfig().save(tmp_path / "plain.yaml")
    assert yaml.safe_load((tmp_path / "plain.yaml").read_text())["metrics"]["wandb"] is None
    on = TrainConfig.load(tmp_path / "plain.yaml", overrides=["metrics.wandb.project=x", "parallel=fsdp2"])
    assert on.metrics.wandb == WandbConfig(project="x", mode="offline")
    assert on.parallel == "fsdp2"
    off = TrainConfig.load(tmp_path / "c.yaml", overrides=["metrics.wandb=null", "metrics.tensorboard=false"])
    assert off.metrics == MetricsConfig()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("parallel=zero3", r"parallel='zero3'; expected one of \('ddp', 'fsdp2'\)"),
        ("metrics.wandb.mode=cloud", r"metrics.wandb.mode='cloud'; expected 'offline' or 'online'"),
        ("metrics.wandb.project=''", r"metrics.wandb.project is empty"),
        ("metrics.wandb.team=x", r"unknown WandbConfig key\(s\) \['team'\]"),
        ("metrics.tensorboard.dir=x", r"'tensorboard' is a value, not a section"),
        ("metrics=3", r"MetricsConfig expects a mapping"),
        ("log_every=0", r"log_every=0; must be ≥ 1"),
        ("checkpoint_every=-5", r"checkpoint_every=-5; must be ≥ 1"),
    ],
)
def test_bad_values_are_clear_errors(override: str, message: str, tmp_path: Path) -> None:
    TrainConfig().save(tmp_path / "c.yaml")
    with pytest.raises(ValueError, match=message):
        TrainConfig.load(tmp_path / "c.yaml", overrides=[override])
