"""Typed training configuration by concern, saved as YAML beside every run, overridable as ``a.b=value``.

A run is one :class:`TrainConfig` of sections — ``model``, ``data``, ``masking``, ``loss``, ``optim``,
``schedule``, ``checkpoint``, ``metrics``, ``evaluation``, ``parallel`` — each handed as is to the
component it configures. YAML files may ``extends:`` another file (``pipelines/recipe.yaml`` holds the
recipe, the per-size files only what differs); keys merge section by section. Every value is parsed
against its field's type (:mod:`~olmoearth_model.train.config_parse`): numbers in any YAML spelling
(``3e-4``, ``1_000``), booleans, enumerations, tuples; a wrong one raises :class:`ConfigError` naming
the key, the value and the type expected.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from olmoearth_model.evaluation.config import EvaluationConfig
from olmoearth_model.losses import LossConfig
from olmoearth_model.train.config_parse import ConfigError, from_dict, load_yaml, set_dotted

__all__ = [
    "CheckpointConfig", "ConfigError", "DataConfig", "MaskingConfig", "MetricsConfig", "ModelSection",
    "OptimConfig", "ParallelConfig", "ScheduleConfig", "TrainConfig", "WandbConfig", "from_dict",
]  # fmt: skip


def _at_least(key: str, value: float, low: float) -> None:
    if value < low:
        raise ConfigError(f"{key}={value!r}; must be ≥ {low:g}")


@dataclass
class ModelSection:
    """Which model (``nn.sizes``) and how it starts (:func:`olmoearth_model.train.build.build_model`)."""

    size: Literal["nano", "tiny", "base", "large"] = "nano"
    target: Literal["lite", "ema"] = "lite"  # Latent MIM Lite, or the full Latent MIM (ablation)
    ema_decay: float = 0.996  # only for target=ema
    encoder_drop_path: float = 0.1
    init_seed: int = 12536


@dataclass
class DataConfig:
    """Which corpus and how batches are drawn from it (recipe §8.4)."""

    corpus: str = "data/demo.zarr"
    split: str | None = "train"  # samples of this split only; null: every sample of the corpus
    global_batch: int = 8  # samples per optimiser step, all ranks together
    microbatch: int = 8  # samples per forward/backward on one rank
    num_workers: int = 0  # loader processes per rank
    seed: int = 3622
    token_budget: int = 2250
    patch_sizes: tuple[int, int] = (1, 8)
    crop_tokens: tuple[int, int] = (1, 12)

    def __post_init__(self) -> None:
        for key in ("global_batch", "microbatch", "token_budget"):
            _at_least(f"data.{key}", getattr(self, key), 1)
        _at_least("data.num_workers", self.num_workers, 0)
        for key in ("patch_sizes", "crop_tokens"):
            low, high = getattr(self, key)
            if not 1 <= low <= high:
                raise ConfigError(f"data.{key}=[{low}, {high}]; expected 1 ≤ low ≤ high")


@dataclass
class MaskingConfig:
    """The masking strategy that makes the two views (``olmoearth_model.masking``)."""

    strategy: str = "modality_cross_random"

    def __post_init__(self) -> None:
        from olmoearth_model.masking import MASKING_STRATEGIES

        if self.strategy not in MASKING_STRATEGIES:
            raise ConfigError(
                f"masking.strategy={self.strategy!r}; expected one of {sorted(MASKING_STRATEGIES)}"
            )


@dataclass
class OptimConfig:
    """AdamW (recipe §8.2; Base defaults) and the guard against non-finite steps."""

    lr: float = 1e-4
    weight_decay: float = 0.02
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    max_grad_norm: float = 1.0
    # A step whose loss or gradient norm is not finite is skipped (weights untouched) and logged; this
    # many in a row stop the run (the data or the lr is broken, not one batch).
    max_nonfinite_steps: int = 3

    def __post_init__(self) -> None:
        _at_least("optim.lr", self.lr, 0)
        _at_least("optim.max_nonfinite_steps", self.max_nonfinite_steps, 1)


@dataclass
class ScheduleConfig:
    """Run length and the warm-up + cosine learning-rate schedule (recipe §8.2)."""

    max_steps: int = 300
    warmup_steps: int = 8000
    alpha_f: float = 0.1  # final lr = alpha_f · optim.lr

    def __post_init__(self) -> None:
        _at_least("schedule.max_steps", self.max_steps, 1)
        _at_least("schedule.warmup_steps", self.warmup_steps, 0)


@dataclass
class CheckpointConfig:
    """When ``checkpoint.pt`` is written (also on SIGTERM and at the end) and whether to resume from it."""

    every_steps: int = 100
    resume: bool = True

    def __post_init__(self) -> None:
        _at_least("checkpoint.every_steps", self.every_steps, 1)


@dataclass
class WandbConfig:
    """Weights & Biases logging (rank 0 only); needs the ``olmoearth-model[tracking]`` extra."""

    project: str = "olmoearth"
    mode: Literal["offline", "online"] = "offline"  # offline: files under the run, `wandb sync` later
    entity: str | None = None
    name: str | None = None  # defaults to the run directory's name

    def __post_init__(self) -> None:
        if not self.project:
            raise ConfigError("metrics.wandb.project is empty; name a W&B project (e.g. olmoearth)")


@dataclass
class MetricsConfig:
    """What is logged when: ``metrics.jsonl`` (always), the console, the probe batch, trackers."""

    log_every: int = 1  # steps between records (JSONL, trackers, console); the only host reads of a step
    probe_every: int = 25  # steps between probe-batch evaluations (loss + collapse monitor)
    tensorboard: bool = False  # event files under <run_dir>/tensorboard, same scalars as the JSONL
    wandb: WandbConfig | None = None  # None: off; e.g. {project: olmoearth, mode: offline}

    def __post_init__(self) -> None:
        _at_least("metrics.log_every", self.log_every, 1)
        _at_least("metrics.probe_every", self.probe_every, 1)


@dataclass
class ParallelConfig:
    """Where and how the step runs: device, DDP/FSDP2 under torchrun, torch.compile, rank checks."""

    mode: Literal["ddp", "fsdp2"] = "ddp"  # under torchrun: replicated (ddp) or sharded (fsdp2) weights
    device: str = "auto"  # auto: this rank's GPU if there is one, else the CPU
    compile: bool = False  # torch.compile the objective (opt-in: the reference saw it degrade the loss)
    # Steps between the one all-reduce that carries the stop signal (SIGTERM) and the ranks' weight
    # checksums (DDP divergence check); SIGTERM is honoured at the next such step.
    sync_every: int = 10

    def __post_init__(self) -> None:
        _at_least("parallel.sync_every", self.sync_every, 1)


@dataclass
class TrainConfig:
    """One pre-training run: a run directory and one section per concern."""

    run_dir: str = "runs/demo"
    model: ModelSection = field(default_factory=ModelSection)
    data: DataConfig = field(default_factory=DataConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    parallel: ParallelConfig = field(default_factory=ParallelConfig)

    def __post_init__(self) -> None:
        _at_least("evaluation.every_steps", self.evaluation.every_steps, 0)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), as written to ``config.yaml``."""
        return _plain(dataclasses.asdict(self))

    def save(self, path: Path | str) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    def updated(self, *overrides: str) -> TrainConfig:
        """A copy with ``a.b=value`` overrides applied (values parsed as YAML, then typed)."""
        doc = self.to_dict()
        for item in overrides:
            set_dotted(doc, item)
        return from_dict(TrainConfig, doc)

    @classmethod
    def load(cls, path: Path | str, *, overrides: list[str] | None = None) -> TrainConfig:
        """Read a YAML config (following ``extends:``), then apply ``a.b=value`` overrides.

        Raises:
            ConfigError: a key that does not exist (an old flat key names its new place), or a value
                that does not parse as its field's type.
        """
        doc = load_yaml(Path(path))
        for item in overrides or []:
            set_dotted(doc, item)
        return from_dict(cls, doc)


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
