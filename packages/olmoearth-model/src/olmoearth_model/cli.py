"""``olmoearth-model`` command line.

``olmoearth-model describe --size nano [--modalities v1] [--patch-size 4] [--crop 6]`` prints the
architecture, parameter counts per part and the token counts of one sample for a crop. The model is
built on the ``meta`` device: counting needs shapes, not weights, so even Large describes instantly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import torch

from olmoearth_data.modalities import MODALITY_SETS
from olmoearth_model.budget import TOKEN_BUDGET, bandset_counts, timesteps_for_budget, token_slots
from olmoearth_model.nn.latent_mim import LatentMIM
from olmoearth_model.nn.sizes import SIZES, ModelConfig


def describe(
    *, size: str, modalities: str, patch_size: int, crop: int, budget: int = TOKEN_BUDGET
) -> list[str]:
    """Lines of the ``describe`` report (``key: value``; counts are plain integers)."""
    config = ModelConfig.from_names(size=size, modalities=modalities)
    with torch.device("meta"):
        model = LatentMIM(config=config)
    counts = model.parameter_counts()
    s = config.size
    monthly, static = bandset_counts(specs=config.modalities)
    T = timesteps_for_budget(h=crop, specs=config.modalities, budget=budget)
    return [
        f"size: {s.name}",
        f"encoder: dim {s.encoder_dim}, depth {s.encoder_depth}, heads {s.encoder_heads}, "
        f"mlp ratio {s.mlp_ratio:g}, drop path {config.encoder_drop_path:g}",
        f"decoder: dim {s.decoder_dim}, depth {s.decoder_depth}, heads {s.decoder_heads}, cross-attn only",
        f"modalities: {modalities} = {', '.join(m.name for m in config.modalities)}",
        f"bandsets: {monthly} monthly, {static} static",
        f"encoder_params: {counts['encoder']}",
        f"decoder_params: {counts['decoder']}",
        f"target_params: {counts['target']}",
        f"target: {config.target} (frozen, not trained)",
        f"total_trainable_params: {counts['trainable']}",
        f"patch_size: {patch_size}",
        f"crop_tokens: {crop}",
        f"crop_pixels: {crop * patch_size}",
        f"timesteps: {T}",
        f"token_budget: {budget}",
        f"token_slots_per_sample: {token_slots(h=crop, timesteps=T, specs=config.modalities)}",
    ]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="olmoearth-model", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("describe", help="print sizes, parameter counts and token counts")
    d.add_argument("--size", required=True, choices=sorted(SIZES))
    d.add_argument(
        "--modalities",
        default="v1",
        help=f"modality set ({', '.join(MODALITY_SETS)}) or comma-separated names",
    )
    d.add_argument(
        "--patch-size", type=int, default=4, choices=range(1, 9), metavar="P", help="1..8 (default 4)"
    )
    d.add_argument("--crop", type=int, default=6, metavar="H", help="crop side in tokens (default 6)")
    d.add_argument("--budget", type=int, default=TOKEN_BUDGET, help=f"token budget (default {TOKEN_BUDGET})")
    t = sub.add_parser("train", help="pre-train on a corpus (config YAML + key.sub=value overrides)")
    t.add_argument("--config", required=True, help="YAML, e.g. pipelines/demo.yaml")
    t.add_argument("overrides", nargs="*", help="e.g. max_steps=50 optim.lr=3e-4")
    t.add_argument("--new-run", action="store_true",
                   help="start over in run_dir (resume=false): a run there with other settings is "
                        "otherwise refused")  # fmt: skip
    p = sub.add_parser("plot", help="plot a run's metrics.jsonl to PNG")
    p.add_argument("run_dir")
    p.add_argument("--out", default=None)
    return parser


def _train(args: argparse.Namespace) -> int:
    from olmoearth_model.train.config import TrainConfig
    from olmoearth_model.train.loop import train

    overrides = [*args.overrides, *(["resume=false"] if args.new_run else [])]
    config = TrainConfig.load(args.config, overrides=overrides)
    run_dir = train(config)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun every rank returns here
        print(f"run written to {run_dir} (config.yaml, metrics.jsonl, model.pt)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``olmoearth-model`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "describe":
        if args.crop < 1:
            print("--crop must be ≥ 1", file=sys.stderr)
            return 2
        lines = describe(
            size=args.size,
            modalities=args.modalities,
            patch_size=args.patch_size,
            crop=args.crop,
            budget=args.budget,
        )
        print("\n".join(lines))
        return 0
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "plot":
            from olmoearth_model.train.plot import plot_run

            print(plot_run(args.run_dir, out=args.out))
            return 0
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
