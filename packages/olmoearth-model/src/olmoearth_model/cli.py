"""``olmoearth-model`` command line: describe a model, pre-train it, plot a run.

``olmoearth-model describe --size nano [--modalities v1] [--patch-size 4] [--crop 6]`` prints the
architecture, parameter counts per part and the token counts of one sample for a crop. The model is
built on the ``meta`` device: counting needs shapes, not weights, so even Large describes instantly.

Errors a person can fix print as one line, ``olmoearth-model: error: …``, exit 2, with nothing written
(:mod:`olmoearth_data.cli_errors`). torch is imported by the commands, not here: ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from olmoearth_data.cli_errors import CliParser, run_command
from olmoearth_data.preflight import require_input, require_range
from olmoearth_model.budget import TOKEN_BUDGET  # no torch: --help stays instant
from olmoearth_model.evaluation.commands import register as register_evaluation  # no torch either

PROG = "olmoearth-model"
SIZE_NAMES = ("base", "large", "nano", "tiny")  # nn.sizes.SIZES' keys; tests/cli checks they agree


def describe(
    *, size: str, modalities: str, patch_size: int, crop: int, budget: int = TOKEN_BUDGET
) -> list[str]:
    """Lines of the ``describe`` report (``key: value``; counts are plain integers)."""
    import torch

    from olmoearth_model.budget import bandset_counts, timesteps_for_budget, token_slots
    from olmoearth_model.nn.latent_mim import LatentMIM
    from olmoearth_model.nn.sizes import ModelConfig

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


def _describe(args: argparse.Namespace) -> int:
    from olmoearth_data.modalities import modality_set

    require_range(name="--crop", value=args.crop, low=1)
    require_range(name="--budget", value=args.budget, low=1)
    modality_set(args.modalities)  # an unknown name: one line before torch is imported
    print("\n".join(describe(size=args.size, modalities=args.modalities, patch_size=args.patch_size,
                             crop=args.crop, budget=args.budget)))  # fmt: skip
    return 0


def _add_describe(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("describe", help="print sizes, parameter counts and token counts")
    d.add_argument("--size", required=True, choices=SIZE_NAMES, help="model size")
    d.add_argument(
        "--modalities", default="v1", help="modality set (default, s2, v1) or comma-separated names"
    )
    d.add_argument(
        "--patch-size", type=int, default=4, choices=range(1, 9), metavar="P", help="patch side, 1..8"
    )
    d.add_argument("--crop", type=int, default=6, metavar="H", help="crop side in tokens (≥ 1)")
    d.add_argument("--budget", type=int, default=TOKEN_BUDGET, help="token budget per sample")
    d.set_defaults(func=_describe)


def _train(args: argparse.Namespace) -> int:
    from olmoearth_model.train.config import TrainConfig
    from olmoearth_model.train.loop import train_run

    overrides = [*args.overrides, *(["checkpoint.resume=false"] if args.new_run else [])]
    config = TrainConfig.load(args.config, overrides=overrides)
    outcome = train_run(config)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun every rank returns here
        if outcome.finished:
            print(f"run written to {outcome.run_dir} (config.yaml, metrics.jsonl, model.pt)")
        else:  # pre-empted: exit 0 so that a scheduler requeues the same command
            print(f"stopped by SIGTERM: checkpoint in {outcome.run_dir}; rerun the same command to resume")
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="pre-train on a corpus (config YAML + key.sub=value overrides)")
    t.add_argument("--config", required=True, help="YAML, e.g. pipelines/demo.yaml")
    t.add_argument("overrides", nargs="*", help="section.key=value, e.g. schedule.max_steps=50 optim.lr=3e-4")
    t.add_argument("--new-run", action="store_true",
                   help="start over in run_dir (checkpoint.resume=false): a run there with other settings is "
                        "otherwise refused")  # fmt: skip
    t.set_defaults(func=_train)


def _plot(args: argparse.Namespace) -> int:
    require_input(path=args.run_dir, what="run directory", hint="train one with `olmoearth-model train`")
    from olmoearth_model.train.plot import plot_run

    print(plot_run(args.run_dir, out=args.out))
    return 0


def _add_plot(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="plot a run's metrics.jsonl to PNG")
    p.add_argument("run_dir", help="run directory holding metrics.jsonl")
    p.add_argument("--out", default=None, help="output PNG (default: RUN_DIR/loss.png)")
    p.set_defaults(func=_plot)


#: One registration per subcommand: each adds its parser and ``set_defaults(func=...)``. A new
#: subcommand is one more entry; its module should import torch inside the command, not at import.
SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_describe, _add_train, _add_plot]
SUBCOMMANDS.append(register_evaluation)  # eval, embed (olmoearth_model.evaluation.commands)


def _parser() -> argparse.ArgumentParser:
    parser = CliParser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``olmoearth-model`` console script."""
    args = _parser().parse_args(argv)
    return run_command(PROG, lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
