"""A run directory remembers what it trains: a resume with other settings is refused, not mixed in.

``train`` writes ``config.yaml`` (the whole :class:`~olmoearth_model.train.config.TrainConfig`) and
``run.json`` (:func:`run_identity`: the settings a checkpoint only makes sense with — model, corpus
and its modality set and size, batch, sampling, objective, seeds — with the corpus as an absolute
path). Before anything is written, :func:`check_resume` compares a resuming run's identity with the
recorded one and raises :class:`RunMismatchError` naming every differing key, so a changed run
neither continues silently nor dies in a state-dict traceback, and ``config.yaml`` stays as it was.
``checkpoint.resume=false`` (``olmoearth-model train --new-run``) starts over: the previous
checkpoint is moved aside to ``checkpoint.previous.pt`` so that the new run can never resume from it.

Free to change on resume: ``schedule``, ``optim``, ``data.microbatch``, ``data.num_workers``,
``parallel``, ``checkpoint``, ``metrics`` and ``evaluation``.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

from olmoearth_model.train.checkpoint import CHECKPOINT_NAME
from olmoearth_model.train.config import TrainConfig

RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"
PREVIOUS_CHECKPOINT = "checkpoint.previous.pt"
#: TrainConfig keys (dotted) a resumed run must share with the run it resumes (besides the corpus facts).
RESUME_KEYS = (
    "model.size", "model.target", "model.ema_decay", "model.encoder_drop_path", "model.init_seed",
    "masking.strategy", "loss.patch_loss", "loss.tau", "loss.contrastive", "loss.contrastive_tau",
    "loss.contrastive_weight", "data.split", "data.global_batch", "data.seed", "data.token_budget",
    "data.patch_sizes", "data.crop_tokens",
)  # fmt: skip


def _dotted(doc: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        doc = doc[part]
    return doc


class RunMismatchError(ValueError):
    """A resume whose settings differ from those the run directory was trained with."""


def corpus_facts(corpus: str) -> dict[str, Any]:
    """``corpus`` (absolute path), ``modalities`` (names, in order) and ``samples`` (rows) of a corpus.

    Missing facts (no store at the path) are ``None``; training then fails on its own, clearly.
    """
    facts: dict[str, Any] = {"corpus": str(Path(corpus).resolve()), "modalities": None, "samples": None}
    try:
        import zarr

        from olmoearth_data.modalities import registry_from_dict

        group = zarr.open_group(corpus, mode="r")
        facts["modalities"] = [
            s.name for s in registry_from_dict(dict(group.attrs["olmoearth"])["modalities"])
        ]
        facts["samples"] = int(group["status"].shape[0])
    except (FileNotFoundError, KeyError, ValueError, OSError):
        pass
    return facts


def run_identity(config: TrainConfig) -> dict[str, Any]:
    """The settings a checkpoint of ``config`` belongs to: :data:`RESUME_KEYS` and :func:`corpus_facts`."""
    doc = config.to_dict()
    return {**{k: _dotted(doc, k) for k in RESUME_KEYS}, **corpus_facts(config.data.corpus)}


def _recorded(run_dir: Path) -> dict[str, Any] | None:
    """The identity recorded in ``run_dir`` (``run.json``; older runs: ``config.yaml``'s keys), or None."""
    run_file, config_file = run_dir / RUN_FILE, run_dir / CONFIG_FILE
    if run_file.exists():
        return dict(json.loads(run_file.read_text())["identity"])
    if config_file.exists():
        doc = yaml.safe_load(config_file.read_text()) or {}
        old = {}
        for k in RESUME_KEYS:
            with contextlib.suppress(KeyError, TypeError):  # a flat config.yaml of an older trainer
                old[k] = _dotted(doc, k)
        corpus = (doc.get("data") or {}).get("corpus") if isinstance(doc.get("data"), dict) else None
        if corpus is not None:
            old["corpus"] = str(Path(corpus).resolve())
        return old
    return None


def check_resume(config: TrainConfig) -> None:
    """Refuse (:class:`RunMismatchError`, one line) to resume ``config.run_dir`` with other settings.

    Only a resume is judged: ``config.resume`` true and a checkpoint in the run directory. Keys absent
    from the record (runs written before ``run.json``) are not compared. Reads only; writes nothing.
    """
    run_dir = Path(config.run_dir)
    if not config.checkpoint.resume or not (run_dir / CHECKPOINT_NAME).exists():
        return
    recorded = _recorded(run_dir)
    if recorded is None:
        return
    current = run_identity(config)
    diffs = [k for k in current if k in recorded and _plain(recorded[k]) != _plain(current[k])]
    if diffs:
        changes = ", ".join(f"{k}: {recorded[k]!r} -> {current[k]!r}" for k in diffs)
        raise RunMismatchError(
            f"run directory {run_dir} holds a run with other settings ({changes}); refusing to resume it "
            f"with them: rerun with the recorded settings, start over there with --new-run "
            f"(checkpoint.resume=false), or pick another run_dir"
        )


def start_run(config: TrainConfig) -> None:
    """Record ``config`` in its run directory (rank 0, after :func:`check_resume` passed).

    Creates the directory, writes ``config.yaml`` and ``run.json`` (atomically); a new run
    (``resume=false``) first moves an existing checkpoint aside to ``checkpoint.previous.pt``.
    """
    run_dir = Path(config.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if not config.checkpoint.resume and (run_dir / CHECKPOINT_NAME).exists():
        os.replace(run_dir / CHECKPOINT_NAME, run_dir / PREVIOUS_CHECKPOINT)
    config.save(run_dir / CONFIG_FILE)
    tmp = run_dir / f".{RUN_FILE}.tmp"
    tmp.write_text(json.dumps({"format": "olmoearth.run/1", "identity": run_identity(config)}, indent=2))
    os.replace(tmp, run_dir / RUN_FILE)


def _plain(value: Any) -> Any:
    """Tuples and lists compare equal (YAML/JSON give lists, the config tuples)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value
