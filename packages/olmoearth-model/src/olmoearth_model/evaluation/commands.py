"""``olmoearth-model eval`` and ``olmoearth-model embed`` (registered by :func:`register`).

``eval --release DIR --corpus C`` probes a release (or a run directory / ``model.pt`` /
``checkpoint.pt``) and, as the baseline row, a randomly initialised encoder of the same architecture
on the corpus's maps; it prints one row per encoder and can write them as JSON (``--out``).
``embed --release DIR --corpus C --out E.zarr [--samples …]`` writes per-token embeddings
(:mod:`olmoearth_model.evaluation.embed`). Errors: one line on stderr, exit 2, nothing written
(the CLI's ``run_command``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from olmoearth_data.preflight import require_input, require_range
from olmoearth_model.evaluation.config import PROBE_TASKS, EvaluationConfig

# torch is imported inside the commands: `olmoearth-model --help` stays instant.


def load_encoder(path: Path | str, *, corpus: Path | str):
    """``(encoder, description)`` from a release dir, a run dir, or a ``model.pt``/``checkpoint.pt``."""
    import torch

    from olmoearth_model.data.reader import CorpusReader
    from olmoearth_model.nn.encoder import Encoder
    from olmoearth_model.nn.sizes import get_size
    from olmoearth_model.train.export import load_release

    path = Path(path)
    for release in (path, path / "release"):
        if (release / "config.json").exists():
            encoder, _ = load_release(release)
            return encoder, f"release {release}"
    weights = path / "model.pt" if path.is_dir() else path
    if not weights.is_file():
        raise FileNotFoundError(f"{path}: no release (config.json), run directory or model/checkpoint file")
    state = torch.load(weights, map_location="cpu", weights_only=False)
    config = state.get("config", {})
    size = config.get("size") or config.get("model", {}).get("size")
    if size is None:
        raise ValueError(f"{weights} records no model size in its config")
    encoder = Encoder(specs=CorpusReader(corpus).specs, dim=get_size(size).encoder_dim,
                      depth=get_size(size).encoder_depth, num_heads=get_size(size).encoder_heads,
                      mlp_ratio=get_size(size).mlp_ratio, drop_path=0.0)  # fmt: skip
    prefix = "encoder."
    enc_state = {k[len(prefix) :]: v for k, v in state["model"].items() if k.startswith(prefix)}
    try:
        encoder.load_state_dict(enc_state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ValueError(f"{weights} does not fit corpus {corpus}'s modalities: {first}") from None
    return encoder.eval(), f"{weights.name} step {state.get('step', '?')}"


def random_encoder_like(encoder, *, seed: int):
    """An encoder of ``encoder``'s architecture, freshly built as training builds it (Xavier linears,
    zero bandset embeddings, the fixed month table), its init drawn from ``seed`` (global RNG kept)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = type(encoder)(**encoder.init_kwargs)
    return fresh.eval()


def _settings(args: argparse.Namespace) -> EvaluationConfig:
    return EvaluationConfig(
        split=args.split, score_split=None if args.score_split == "none" else args.score_split,
        tasks=tuple(args.tasks.split(",")),
        max_samples=args.max_samples, probe_steps=args.probe_steps, knn_k=args.knn_k,
        patch_size=args.patch_size, crop_tokens=args.crop_tokens, timesteps=args.timesteps,
        inputs=tuple(args.inputs.split(",")) if args.inputs else None,
    )  # fmt: skip


def _check_inputs(args: argparse.Namespace) -> None:
    require_input(path=args.release, what="release", hint="train a run (its release/ folder) first")
    require_input(path=args.corpus, what="corpus", hint="build one with `olmoearth-data build`")
    for name in ("patch_size", "crop_tokens", "timesteps"):
        require_range(name="--" + name.replace("_", "-"), value=getattr(args, name), low=1)
    if Path(args.out or "").name and Path(args.out).exists():
        raise FileExistsError(f"{args.out} exists; choose another --out or remove it")


def _device(name: str | None):
    import torch

    return torch.device(name or ("cuda" if torch.cuda.is_available() else "cpu"))


def _eval(args: argparse.Namespace) -> int:
    _check_inputs(args)
    settings = _settings(args)
    from olmoearth_model.evaluation.runner import evaluate_encoder

    device = _device(args.device)
    encoder, what = load_encoder(args.release, corpus=args.corpus)
    rows = {what: encoder}
    if not args.no_baseline:
        rows[f"random init (seed {args.baseline_seed})"] = random_encoder_like(
            encoder, seed=args.baseline_seed
        )
    results = {}
    for name, enc in rows.items():
        results[name] = evaluate_encoder(encoder=enc.to(device), corpus=args.corpus, settings=settings,
                                         device=device)  # fmt: skip
    keys = sorted({k for r in results.values() for k in r if not k.startswith("eval/")})
    width = max(len(k) for k in results)
    print(f"{'encoder':<{width}}  " + "  ".join(keys))
    for name, r in results.items():
        cells = [f"{r[k]:.4f}".rjust(len(k)) if k in r else "-".rjust(len(k)) for k in keys]
        print(f"{name:<{width}}  " + "  ".join(cells))
    first = next(iter(results.values()))
    print(f"fit units {first['eval/fit_units']:g}, score units {first['eval/score_units']:g} "
          f"({settings.split} → {settings.score_split or settings.split + ' by cell'})")  # fmt: skip
    if args.out:
        doc = {"corpus": str(args.corpus), "settings": settings.__dict__, "results": results}
        Path(args.out).write_text(json.dumps(doc, indent=2, default=list))
    return 0


def _embed(args: argparse.Namespace) -> int:
    _check_inputs(args)
    from olmoearth_model.evaluation.embed import resolve_samples, write_embeddings

    rows = resolve_samples(args.corpus, args.samples)
    encoder, what = load_encoder(args.release, corpus=args.corpus)
    device = _device(args.device)
    out = write_embeddings(encoder=encoder.to(device), corpus=args.corpus, rows=rows, out=args.out,
                           patch_size=args.patch_size, crop_tokens=args.crop_tokens,
                           timesteps=args.timesteps, device=device, source=what)  # fmt: skip
    print(
        f"{len(rows)} sample(s) embedded to {out} (xr.open_zarr({str(out)!r}, group=ID, decode_coords='all'))"
    )
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--release", required=True, help="release dir, run dir, or model.pt/checkpoint.pt")
    p.add_argument("--corpus", required=True, help="corpus .zarr (norm stats computed)")
    p.add_argument("--patch-size", type=int, default=8, help="token side in 10 m pixels (default 8)")
    p.add_argument("--crop-tokens", type=int, default=8, help="crop side in tokens (default 8)")
    p.add_argument("--timesteps", type=int, default=4, help="periods encoded (default 4)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``eval`` and ``embed`` to the ``olmoearth-model`` parser (each sets ``func(args) -> int``)."""
    e = subparsers.add_parser("eval", help="probe an encoder (and a random-init baseline) on the corpus maps")
    _common(e)
    e.add_argument("--split", default="validation", help="split the probes are fit on (default validation)")
    e.add_argument("--score-split", default="test",
                   help="split scored (default test; none: --split partitioned by cell)")  # fmt: skip
    e.add_argument("--tasks", default=",".join(PROBE_TASKS), help="comma-separated probe tasks")
    e.add_argument("--inputs", default=None,
                   help="observation modalities encoded, e.g. sentinel2_l2a (default: all)")  # fmt: skip
    e.add_argument("--max-samples", type=int, default=64, help="samples per split (default 64)")
    e.add_argument(
        "--probe-steps",
        type=int,
        default=300,
        help="full-batch Adam steps of each linear probe (default 300)",
    )
    e.add_argument("--knn-k", type=int, default=20, help="neighbours of the kNN probe (default 20)")
    e.add_argument("--baseline-seed", type=int, default=0, help="init seed of the random-init row")
    e.add_argument("--no-baseline", action="store_true", help="skip the random-init row")
    e.add_argument("--out", default=None, help="write the rows as JSON here")
    e.set_defaults(func=_eval)
    m = subparsers.add_parser("embed", help="per-token embeddings of corpus samples → georeferenced Zarr")
    _common(m)
    m.add_argument("--out", required=True, help="new Zarr store, e.g. embeddings.zarr")
    m.add_argument("--samples", nargs="*", default=None, help="rows, sample ids or tile ids (default: all)")
    m.set_defaults(func=_embed)
