"""Typed training configuration, saved as YAML beside every run and overridable as ``key.sub=value``."""

from __future__ import annotations

import dataclasses
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
                node = node.setdefault(p, {})
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
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(doc) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} key(s) {sorted(unknown)}; valid keys: {sorted(names)}")
    kwargs = {}
    for name, value in doc.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = from_dict(hint, value or {})
        elif typing.get_origin(hint) is tuple:
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)
