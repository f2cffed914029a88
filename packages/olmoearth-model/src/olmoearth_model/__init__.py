"""OlmoEarth model and pretraining recipe (Latent MIM Lite) in PyTorch.

Entry points: :class:`olmoearth_model.nn.LatentMIM` / :func:`olmoearth_model.nn.build_model` (model),
:mod:`olmoearth_model.masking` (token roles, CPU), :mod:`olmoearth_model.losses` and
:func:`olmoearth_model.objective.latent_mim_objective` (training objective), :class:`Batch` (the
loader → model contract of ``docs/batch-schema.md``).
"""

from olmoearth_model.batch import MISSING_VALUE, Batch, MaskValue

__version__ = "0.1.0"

__all__ = ["MISSING_VALUE", "Batch", "MaskValue", "__version__"]
