"""OlmoEarth model and pretraining recipe (Latent MIM Lite) in PyTorch."""

__version__ = "0.1.0"
