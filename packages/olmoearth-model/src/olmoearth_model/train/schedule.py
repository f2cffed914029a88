"""Linear warm-up then cosine decay to ``alpha_f · lr`` (recipe §8.2, olmo-core ``CosWithWarmup``)."""

from __future__ import annotations

import math


def learning_rate(
    *, step: int, base_lr: float, warmup_steps: int, max_steps: int, alpha_f: float = 0.1
) -> float:
    """Learning rate at optimiser step ``step`` (0-based).

    ``lr0·t/warmup`` for ``t < warmup``; then ``α·lr0 + (1−α)·lr0·(1 + cos(π (t−w)/(T−w)))/2`` until
    ``T = max_steps``; ``α·lr0`` afterwards.
    """
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    if step >= max_steps:
        return alpha_f * base_lr
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return alpha_f * base_lr + (1 - alpha_f) * base_lr * (1 + math.cos(math.pi * progress)) / 2
