"""Periodic health checks: the probe batch (loss + collapse monitor) and the quality evaluation.

The probe batch is the first batch of epoch 0, fixed for the whole run, evaluated every
``metrics.probe_every`` steps in eval mode (:func:`~olmoearth_model.train.monitor.probe_metrics`).
The evaluation (validation loss and probes, ``olmoearth_model.evaluation``) runs every
``evaluation.every_steps`` steps when that is > 0; it is imported only then.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch

from olmoearth_model.batch import Batch
from olmoearth_model.evaluation.config import EvaluationConfig
from olmoearth_model.nn.latent_mim import LatentMIM
from olmoearth_model.train.monitor import probe_metrics
from olmoearth_model.train.parallel import Parallel


class Probe:
    """Evaluates the probe batch and, if configured, the evaluation suite on their schedules."""

    def __init__(
        self,
        *,
        batch: Batch,
        every: int,
        evaluation: EvaluationConfig,
        corpus: str,
        device: torch.device,
        is_main: bool,
    ) -> None:
        self.batch, self.every, self.evaluation = batch.to(device), every, evaluation
        self.corpus, self.device, self.is_main = corpus, device, is_main

    def __call__(
        self, *, step: int, max_steps: int, par: Parallel, model: LatentMIM, autocast: AbstractContextManager
    ) -> dict[str, float]:
        """Metrics due after optimiser step ``step`` (1-based count): ``{}`` when nothing is due.

        Under FSDP2 every rank must call (the sharded forward is a collective); otherwise only the
        numbers of rank 0 are used and the other ranks skip the work.
        """
        out: dict[str, float] = {}
        runs_here = par.sharded or self.is_main
        if runs_here and ((step - 1) % self.every == 0 or step == max_steps):
            with autocast:
                out.update(probe_metrics(objective=par.objective, model=model, probe=self.batch))
            par.reshard()
        every = self.evaluation.every_steps
        if runs_here and every > 0 and (step % every == 0 or step == max_steps):
            from olmoearth_model.evaluation import evaluate_in_loop  # optional: only when configured

            was_training = model.training
            model.eval()
            try:
                with autocast:
                    results = evaluate_in_loop(
                        model=model,
                        corpus=self.corpus,
                        settings=self.evaluation,
                        device=self.device,
                        step=step,
                    )
            finally:
                model.train(was_training)
            out.update({k: float(v) for k, v in results.items()})
            par.reshard()
        return out
