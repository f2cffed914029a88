"""Typed training configuration, saved as YAML beside every run and overridable as ``key.sub=value``."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class OptimConfig:
    """AdamW with warm-up + cosine (recipe §8.2; Base defaults)."""

    lr: float = 1e-4
    weight_decay: float = 0.02
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 8000
    alpha_f: float = 0.1
    max_grad_norm: float = 1.0


@dataclass
class WandbConfig:
    """Weights & Biases logging (rank 0 only); needs the ``olmoearth-model[tracking]`` extra."""

    project: str = "olmoearth"
    mode: str = "offline"  # "offline" (files under the run, sync later with `wandb sync`) or "online"
    entity: str | None = None
    name: str | None = None  # defaults to the run directory's name

    def __post_init__(self) -> None:
        if not self.project:
            raise ValueError("metrics.wandb.project is empty; name a W&B project (e.g. olmoearth)")
        if self.mode not in ("offline", "online"):
            raise ValueError(f"metrics.wandb.mode={self.mode!r}; expected 'offline' or 'online'")


@dataclass
class MetricsConfig:
    """Optional experiment trackers beside ``metrics.jsonl`` (which is always written)."""

    tensorboard: bool = False  # event files under <run_dir>/tensorboard, same scalars as the JSONL
    wandb: WandbConfig | None = None  # None: off; e.g. {project: olmoearth, mode: offline}


PARALLEL_MODES = ("ddp", "fsdp2")


@dataclass
class TrainConfig:
    """One pre-training run."""

    corpus: str = "data/demo.zarr"
    run_dir: str = "runs/demo"
    size: str = "nano"
    target: str = "lite"  # "lite" (Latent MIM Lite) or "ema" (full Latent MIM, the ablation)
    masking: str = "modality_cross_random"
    contrastive: bool = True
    patch_loss: str = "modality_patch_discrimination"  # or "patch_discrimination" (ablation)
    ema_decay: float = 0.996  # only for target="ema"
    compile: bool = False  # torch.compile the objective (opt-in: the reference saw it degrade the loss)
    parallel: str = "ddp"  # under torchrun: "ddp" (replicated weights) or "fsdp2" (sharded, for Large)
    max_steps: int = 300
    global_batch: int = 8
    microbatch: int = 8
    seed: int = 3622
    init_seed: int = 12536
    num_workers: int = 0
    token_budget: int = 2250
    patch_sizes: tuple[int, int] = (1, 8)
    crop_tokens: tuple[int, int] = (1, 12)
    log_every: int = 1
    probe_every: int = 25
    checkpoint_every: int = 100
    resume: bool = True
    device: str = "auto"
    optim: OptimConfig = field(default_factory=OptimConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    def __post_init__(self) -> None:
        if self.parallel not in PARALLEL_MODES:
            raise ValueError(f"parallel={self.parallel!r}; expected one of {PARALLEL_MODES}")
        for key in ("log_every", "probe_every", "checkpoint_every", "max_steps"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"{key}={getattr(self, key)!r}; must be ≥ 1 (steps)")

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def save(self, path: Path | str) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def load(cls, path: Path | str, *, overrides: list[str] | None = None) -> TrainConfig:
        """Read a YAML config, then apply ``key.sub=value`` overrides (values parsed as YAML)."""
        doc = yaml.safe_load(Path(path).read_text()) or {}
        for item in overrides or []:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ValueError(f"override {item!r} is not key=value (e.g. optim.lr=3e-4)")
            node = doc
            *parents, leaf = key.split(".")
            for p in parents:
                if node.get(p) is None:  # absent, or null in the YAML (e.g. metrics.wandb: null)
                    node[p] = {}
                if not isinstance(node[p], dict):
                    raise ValueError(f"override {item!r}: {p!r} is a value, not a section with sub-keys")
                node = node[p]
            node[leaf] = yaml.safe_load(raw)
        return from_dict(cls, doc)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def from_dict(cls: type, doc: dict[str, Any]) -> Any:
    """Build dataclass ``cls`` from a dict, recursing into nested dataclasses; unknown keys are errors."""
    if not isinstance(doc, dict):
        raise ValueError(f"{cls.__name__} expects a mapping of keys to values, got {doc!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(doc) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} key(s) {sorted(unknown)}; valid keys: {sorted(names)}")
    kwargs = {}
    for name, value in doc.items():
        hint = hints[name]
        optional = _optional_dataclass(hint)
        if optional is not None:
            kwargs[name] = None if value is None else from_dict(optional, value)
        elif dataclasses.is_dataclass(hint):
            kwargs[name] = from_dict(hint, value or {})
        elif typing.get_origin(hint) is tuple:
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _optional_dataclass(hint: Any) -> type | None:
    """``X`` when ``hint`` is ``X | None`` with ``X`` a dataclass, else None."""
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return None
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if len(args) == 1 and dataclasses.is_dataclass(args[0]) else None
