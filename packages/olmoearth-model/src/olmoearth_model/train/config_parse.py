"""Typed parsing of config dicts into dataclasses: every value checked against its field's type.

YAML 1.1 (PyYAML) reads ``3e-4`` as a string and ``ten`` as a string too; a loader that passes values
through unchecked fails deep inside training with no key named. Here each value is converted to its
field's annotated type or rejected with a :class:`ConfigError` that names the dotted key, the value and
the type expected. Supported annotations: ``int``, ``float``, ``bool``, ``str``, ``Literal[...]``,
``X | None``, ``tuple[X, Y]`` / ``tuple[X, ...]`` and nested dataclasses.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from pathlib import Path
from typing import Any

import yaml

#: Keys of the flat config (before the sections) → where they live now.
MOVED_KEYS = {
    "corpus": "data.corpus", "global_batch": "data.global_batch", "microbatch": "data.microbatch",
    "num_workers": "data.num_workers", "seed": "data.seed", "token_budget": "data.token_budget",
    "patch_sizes": "data.patch_sizes", "crop_tokens": "data.crop_tokens", "size": "model.size",
    "target": "model.target", "ema_decay": "model.ema_decay", "init_seed": "model.init_seed",
    "contrastive": "loss.contrastive", "patch_loss": "loss.patch_loss", "max_steps": "schedule.max_steps",
    "optim.warmup_steps": "schedule.warmup_steps", "optim.alpha_f": "schedule.alpha_f",
    "log_every": "metrics.log_every", "probe_every": "metrics.probe_every",
    "checkpoint_every": "checkpoint.every_steps", "resume": "checkpoint.resume",
    "device": "parallel.device", "compile": "parallel.compile",
}  # fmt: skip
#: Flat keys that became sections: their old scalar value now goes to this key of the section.
BECAME_SECTIONS = {"masking": "masking.strategy", "parallel": "parallel.mode"}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


class ConfigError(ValueError):
    """A config key that does not exist or a value that does not parse as its field's type (one line)."""


def load_yaml(path: Path, *, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping of a YAML config, with ``extends: other.yaml`` (relative to it) merged underneath."""
    path = path.resolve()
    if path in _seen:
        raise ConfigError(f"{path.name}: 'extends' loops back to itself")
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(doc).__name__}")
    parent = doc.pop("extends", None)
    if parent is None:
        return doc
    if not isinstance(parent, str):
        raise ConfigError(f"{path.name}: extends={parent!r}; expected a YAML file name")
    return merge(load_yaml(path.parent / parent, _seen=(*_seen, path)), doc)


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` on top, section by section (a non-mapping value replaces what it covers)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def set_dotted(doc: dict[str, Any], item: str) -> None:
    """Apply one ``a.b.c=value`` override to ``doc`` in place (the value parsed as YAML)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r} is not key=value (e.g. optim.lr=3e-4)")
    if key in MOVED_KEYS or key in BECAME_SECTIONS:
        new = MOVED_KEYS.get(key) or BECAME_SECTIONS[key]
        raise ConfigError(f"override {item!r}: {key!r} is now {new!r} (e.g. {new}={raw})")
    node = doc
    *parents, leaf = key.split(".")
    for i, p in enumerate(parents):
        if node.get(p) is None:  # absent, or null in the YAML (e.g. metrics.wandb: null)
            node[p] = {}
        if not isinstance(node[p], dict):
            where = ".".join(parents[: i + 1])
            raise ConfigError(f"override {item!r}: {where!r} is a value, not a section with sub-keys")
        node = node[p]
    try:
        node[leaf] = yaml.safe_load(raw)
    except yaml.YAMLError:
        node[leaf] = raw


def from_dict(cls: type, doc: Any, *, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from ``doc``, typing every value; unknown keys are errors.

    ``prefix`` is the dotted key of ``doc`` (for messages). Raises :class:`ConfigError`.
    """
    where = prefix.rstrip(".") or cls.__name__
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}={doc!r}: expected a mapping of keys to values (a section)")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in doc:
        moved_section = f"{prefix}{key}" in BECAME_SECTIONS and not isinstance(doc[key], dict | None)
        if key not in names or moved_section:
            raise ConfigError(_unknown_key(f"{prefix}{key}", doc[key], names=names, prefix=prefix))
    kwargs = {name: parse_value(hints[name], value, key=f"{prefix}{name}") for name, value in doc.items()}
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:  # a section's own check, without its key
        raise ConfigError(f"{where}: {exc}") from None


def _unknown_key(key: str, value: Any, *, names: list[str], prefix: str) -> str:
    if key in MOVED_KEYS:
        return f"config key {key!r} is now {MOVED_KEYS[key]!r} (the config has sections: see docs/trainer.md)"
    if key in BECAME_SECTIONS and not isinstance(value, dict):
        new = BECAME_SECTIONS[key]
        return f"config key {key!r} is now the section {key!r}: write {new}: {value}"
    section = prefix.rstrip(".") or "the config"
    return f"unknown key {key!r} in {section}; valid keys: {', '.join(names)}"


def parse_value(hint: Any, value: Any, *, key: str) -> Any:
    """``value`` converted to type ``hint`` or a :class:`ConfigError` naming ``key``."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None and len(args) < len(typing.get_args(hint)):
            return None
        if len(args) == 1:
            return parse_value(args[0], value, key=key)
        raise TypeError(f"{key}: unsupported annotation {hint}")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, {} if value is None else value, prefix=f"{key}.")
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key}={value!r}; expected one of {', '.join(map(repr, choices))}")
        return value
    if origin is tuple:
        return _parse_tuple(hint, value, key=key)
    if hint is bool:
        return _parse_bool(value, key=key)
    if hint is int:
        return _parse_int(value, key=key)
    if hint is float:
        return _parse_float(value, key=key)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}={value!r}; expected a string")
        return value
    raise TypeError(f"{key}: unsupported annotation {hint}")


def _parse_tuple(hint: Any, value: Any, *, key: str) -> tuple:
    args = typing.get_args(hint)
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{key}={value!r}; expected a list ({_describe_tuple(args)})")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(parse_value(args[0], v, key=f"{key}[{i}]") for i, v in enumerate(value))
    if len(value) != len(args):
        raise ConfigError(f"{key}={list(value)!r}; expected {_describe_tuple(args)}")
    return tuple(parse_value(a, v, key=f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))


def _describe_tuple(args: tuple) -> str:
    if len(args) == 2 and args[1] is Ellipsis:
        return f"any number of {args[0].__name__}"
    return f"{len(args)} values: " + ", ".join(getattr(a, "__name__", str(a)) for a in args)


def _parse_bool(value: Any, *, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ConfigError(f"{key}={value!r}; expected a boolean (true or false)")


def _number(value: Any) -> float | int | None:
    """An int or float from a YAML value or a numeric string (``3e-4``, ``1_000``); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        text = value.strip().replace("_", "")
        for convert in (int, float):
            try:
                return convert(text)
            except ValueError:
                continue
    return None


def _parse_int(value: Any, *, key: str) -> int:
    number = _number(value)
    if isinstance(number, float) and math.isfinite(number) and number.is_integer():
        return int(number)
    if isinstance(number, int):
        return number
    raise ConfigError(f"{key}={value!r}; expected an integer")


def _parse_float(value: Any, *, key: str) -> float:
    number = _number(value)
    if number is None:
        raise ConfigError(f"{key}={value!r}; expected a number (e.g. 3e-4)")
    return float(number)
