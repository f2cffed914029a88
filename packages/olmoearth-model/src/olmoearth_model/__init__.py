"""OlmoEarth model and pretraining recipe (Latent MIM Lite) in PyTorch.

Entry points: :class:`olmoearth_model.nn.LatentMIM` / :func:`olmoearth_model.nn.build_model` (model),
:mod:`olmoearth_model.masking` (token roles, CPU), :mod:`olmoearth_model.losses` and
:func:`olmoearth_model.objective.latent_mim_objective` (training objective), :class:`Batch` (the
loader → model contract of ``docs/batch-schema.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from olmoearth_model.batch import MISSING_VALUE, Batch, MaskValue

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Lazy (PEP 562): importing any olmoearth_model module, e.g. the CLI for ``--help``, must not
    # import torch (~2.5 s); the batch names load on first use.
    if name in ("MISSING_VALUE", "Batch", "MaskValue"):
        from olmoearth_model import batch

        return getattr(batch, name)
    raise AttributeError(f"module 'olmoearth_model' has no attribute {name!r}")


__all__ = ["MISSING_VALUE", "Batch", "MaskValue", "__version__"]
