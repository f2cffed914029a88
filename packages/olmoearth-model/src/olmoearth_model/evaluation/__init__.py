"""Quality evaluation: held-out validation loss, probes on the corpus's own maps, embeddings export.

See docs/evaluation.md. The trainer calls :func:`evaluate_in_loop`; ``olmoearth-model eval`` and
``olmoearth-model embed`` (:mod:`olmoearth_model.evaluation.commands`) run the rest standalone. The
runner (torch) is imported on first use, so the CLI's registration stays light.
"""

from __future__ import annotations

from typing import Any

from olmoearth_model.evaluation.config import PROBE_TASKS, EvaluationConfig

__all__ = ["PROBE_TASKS", "EvaluationConfig", "evaluate_encoder", "evaluate_in_loop", "validation_loss"]


def __getattr__(name: str) -> Any:
    if name in ("evaluate_encoder", "evaluate_in_loop", "validation_loss"):
        from olmoearth_model.evaluation import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
