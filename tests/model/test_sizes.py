"""Parameter counts of the four sizes with the v1 set (recipe §4.1) and the ``describe`` command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from olmoearth_model.nn import build_model

ENCODER = {"nano": 1_361_024, "tiny": 6_202_560, "base": 88_953_600, "large": 307_770_368}
DECODER = {"nano": 827_520, "tiny": 1_855_680, "base": 29_541_120, "large": 52_495_360}
PATCH_EMBED = {"nano": 550_400, "base": 3_302_400}


@pytest.mark.parametrize("size", list(ENCODER))
def test_counts_by_building(size: str) -> None:
    with torch.device("meta"):  # shapes only: Large would otherwise allocate 1.4 GB
        model = build_model(size=size, modalities="v1")
    counts = model.parameter_counts()
    assert counts["encoder"] == ENCODER[size]
    assert counts["decoder"] == DECODER[size]
    embed = sum(p.numel() for p in model.encoder.patch_embed.parameters())
    assert counts["target"] == embed  # the Lite target is the patch embeddings
    if size in PATCH_EMBED:
        assert embed == PATCH_EMBED[size]
    month_tables = 2 * 12 * model.config.size.encoder_dim // 4
    assert counts["trainable"] == ENCODER[size] + DECODER[size] - month_tables


def _describe_cmd() -> list[str]:
    """The installed console script next to this interpreter (``python -m`` if it is not installed)."""
    exe = Path(sys.executable).with_name("olmoearth-model")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "olmoearth_model.cli"]


@pytest.mark.parametrize(
    "size", [s if s == "nano" else pytest.param(s, marks=pytest.mark.slow) for s in ENCODER]
)
def test_describe_subprocess(size: str) -> None:
    out = subprocess.run(
        [
            *_describe_cmd(),
            "describe",
            "--size",
            size,
            "--modalities",
            "v1",
            "--patch-size",
            "4",
            "--crop",
            "6",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    fields = dict(line.split(": ", 1) for line in out.splitlines())
    assert fields["encoder_params"] == str(ENCODER[size])
    assert fields["decoder_params"] == str(DECODER[size])
    assert fields["timesteps"] == "9"
    assert fields["token_slots_per_sample"] == "2160"
