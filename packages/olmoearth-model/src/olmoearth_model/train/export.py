"""Release export: the online encoder as ``model.safetensors`` + ``config.json``, no trainer needed.

``config.json`` carries what inference needs besides weights: the model size, the full modality
registry (band order per bandset) and the corpus's normalisation stats.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors.torch import load_file, save_file

from olmoearth_data.modalities import registry_from_dict, registry_to_dict
from olmoearth_model.nn.encoder import Encoder
from olmoearth_model.nn.latent_mim import LatentMIM
from olmoearth_model.nn.sizes import get_size

RELEASE_FORMAT = "olmoearth.release/1"


def export_release(out_dir: Path | str, *, model: LatentMIM, norm_stats: dict[str, Any]) -> Path:
    """Write ``model.safetensors`` (online encoder weights) and ``config.json`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.encoder.state_dict().items()}
    save_file(weights, str(out / "model.safetensors"))
    size = model.config.size
    config = {
        "format": RELEASE_FORMAT,
        "size": size.name,
        "encoder": {"dim": size.encoder_dim, "depth": size.encoder_depth, "heads": size.encoder_heads,
                    "mlp_ratio": size.mlp_ratio},
        "modalities": registry_to_dict(tuple(model.config.modalities)),
        "band_order": {s.name: list(s.bands) for s in model.config.modalities},
        "norm_stats": norm_stats,
        "normalisation": "x' = (x - (mean - 2 std)) / (4 std); predefined: (x - min) / (max - min)",
    }  # fmt: skip
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return out


def load_release(release_dir: Path | str) -> tuple[Encoder, dict[str, Any]]:
    """The encoder (eval mode) and the release config, from an exported directory."""
    release = Path(release_dir)
    config = json.loads((release / "config.json").read_text())
    if config.get("format") != RELEASE_FORMAT:
        raise ValueError(f"{release} is not an OlmoEarth release (format={config.get('format')!r})")
    size = get_size(config["size"])
    encoder = Encoder(
        specs=registry_from_dict(config["modalities"]),
        dim=size.encoder_dim,
        depth=size.encoder_depth,
        num_heads=size.encoder_heads,
        mlp_ratio=size.mlp_ratio,
        drop_path=0.0,
    )
    encoder.load_state_dict(load_file(str(release / "model.safetensors")))
    return encoder.eval(), config
