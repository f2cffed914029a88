"""Network modules: tokenisation, encodings, transformer blocks, encoder, decoder, targets, sizes."""

from olmoearth_model.nn.decoder import Decoder
from olmoearth_model.nn.encoder import Encoder, EncoderOutput
from olmoearth_model.nn.latent_mim import LatentMIM, LatentMIMOutput, build_model, count_parameters
from olmoearth_model.nn.sizes import SIZES, ModelConfig, ModelSize, get_size
from olmoearth_model.nn.targets import EMATarget, LiteTarget

__all__ = [
    "SIZES",
    "Decoder",
    "EMATarget",
    "Encoder",
    "EncoderOutput",
    "LatentMIM",
    "LatentMIMOutput",
    "LiteTarget",
    "ModelConfig",
    "ModelSize",
    "build_model",
    "count_parameters",
    "get_size",
]
