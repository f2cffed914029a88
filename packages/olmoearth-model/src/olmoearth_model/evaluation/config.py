"""Settings of the quality evaluation: validation loss and probes on the corpus's own maps.

This dataclass is the contract between the trainer (which calls the evaluation every
``every_steps`` steps and logs what it returns) and :mod:`olmoearth_model.evaluation` (which
implements it). See docs/evaluation.md.
"""

from __future__ import annotations

from dataclasses import dataclass

PROBE_TASKS = ("worldcover", "srtm", "canopy_height", "osm_raster", "cdl", "worldcereal")


@dataclass
class EvaluationConfig:
    """What to evaluate in the training loop (``every_steps: 0`` turns it off)."""

    every_steps: int = 0  # steps between evaluations; 0 = never in the loop
    split: str = "validation"  # samples whose labels the probes use (never the training split)
    tasks: tuple[str, ...] = PROBE_TASKS  # probe tasks; absent maps are skipped per sample
    max_samples: int = 64  # evaluation samples drawn from the split (first N by sample id)
    probe_steps: int = 300  # optimiser steps of each linear probe head
    knn_k: int = 20  # neighbours of the kNN probe on sample-pooled embeddings
    validation_loss: bool = True  # also the pre-training loss on the held-out split
    # Added by the evaluation package (defaults keep the contract's behaviour):
    score_split: str | None = None  # probes scored on this split; None: `split` partitioned by cell
    patch_size: int = 8  # token side in 10 m pixels for probes and the validation loss
    crop_tokens: int = 8  # tiles are encoded as a grid of crops of this many tokens a side
    timesteps: int = 4  # monthly periods encoded (the window with the most observations)
    batch_size: int = 8  # samples per validation-loss batch and crops per encoder call
    token_budget: int = 2250  # the validation loss's loader budget (recipe §8.4)
    masking: str = "modality_cross_random"  # the validation loss's masking strategy
    seed: int = 0  # seed of the validation batches and of the probes' token subsample
    inputs: tuple[str, ...] | None = None  # observation modalities encoded; None: all the encoder knows

    def __post_init__(self) -> None:
        if self.every_steps < 0:
            raise ValueError(f"evaluation.every_steps={self.every_steps}; must be ≥ 0 (0 = off)")
        unknown = [t for t in self.tasks if t not in PROBE_TASKS]
        if unknown:
            raise ValueError(f"evaluation.tasks: unknown task(s) {unknown}; known: {list(PROBE_TASKS)}")
        if 256 % (self.patch_size * self.crop_tokens):
            raise ValueError(
                f"evaluation: a crop of {self.crop_tokens} tokens × {self.patch_size} px does not tile 256 px"
            )
        self.tasks = tuple(self.tasks)
        if self.inputs is not None:
            self.inputs = tuple(self.inputs)
