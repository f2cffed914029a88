"""How much of the step's attention and MLP work is spent on padding tokens (issue: pack if > 15 %).

The padded layout (``packed=False``, the former one) gathers each sample's ONLINE_ENCODER tokens into
a ``[B, E, D]`` batch padded to the longest sample (``E = max e_i``), the decoder its DECODER queries
likewise (``Q = max d_i``) against the padded context. Per view, useful vs computed work:

- encoder weights (QKV/out projections, MLP): ``Σ e_i`` vs ``B·E``; self-attention ``Σ e_i²`` vs ``B·E²``;
- decoder weights on the queries: ``Σ d_i`` vs ``B·Q``; K/V projections of the context ``Σ e_i`` vs ``B·E``;
  cross-attention ``Σ d_i·e_i`` vs ``B·Q·E``.

Each term is weighted by its FLOPs (:class:`~olmoearth_model.train.metrics.FlopModel` of the size), so
the share is of the step's transformer FLOPs.

The model now packs (``nn/tokens.py`` ``Packing``): token-wise work runs on the ``Σ max(1, e_i)`` /
``Σ d_i`` real tokens only. What padding work remains is reported for both packed attentions: per
sample (CPU: one SDPA per sample, only the stand-in key of a sample without encoded tokens is extra)
and padded SDPA (elsewhere: the attention terms stay ``B·E²`` and ``B·Q·E``).

Batches are the recipe's own: the loader (patch size 1..8, crops 1..12 tokens, budget 2,250,
``modality_cross_random``, two views) on a fake corpus of the nine v1 modalities with its missing
observations. Writes ``benchmarks/results/padding_cpu.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provenance import git_commit

from olmoearth_data.testing import write_fake_corpus
from olmoearth_model.batch import MaskValue
from olmoearth_model.data.dataset import BatchDataset, LoaderConfig
from olmoearth_model.nn.latent_mim import LatentMIM
from olmoearth_model.nn.sizes import ModelConfig
from olmoearth_model.train.metrics import FlopModel

ROOT = Path(__file__).resolve().parent.parent


def padding_work(masks: dict[str, torch.Tensor], f: FlopModel) -> tuple[float, float, float, float]:
    """Transformer forward FLOPs of one view's masks (per-modality ``[B, h, w, T, S]``): useful, computed
    padded, computed packed with per-sample attention, computed packed with padded attention."""
    e = sum((m == MaskValue.ONLINE_ENCODER).flatten(1).sum(1) for m in masks.values()).double()
    d = sum((m == MaskValue.DECODER).flatten(1).sum(1) for m in masks.values()).double()
    B, E, Q = len(e), max(1.0, float(e.max())), max(1.0, float(d.max()))
    enc_w, enc_a = 2 * f.encoder_block_params, 4 * f.encoder_depth * f.encoder_dim
    dec_w, dec_kv, dec_a = (
        2 * f.decoder_block_params,
        4 * f.decoder_depth * f.decoder_dim**2,
        4 * f.decoder_depth * f.decoder_dim,
    )
    useful = float((enc_w * e + enc_a * e**2 + dec_w * d + dec_kv * e + dec_a * d * e).sum())
    computed = B * (enc_w * E + enc_a * E**2 + dec_w * Q + dec_kv * E + dec_a * Q * E)
    k = e.clamp(min=1)  # a sample without encoded tokens keeps one stand-in row
    tokenwise = float((enc_w * k + dec_w * d + dec_kv * k).sum())
    per_sample = tokenwise + float((enc_a * k**2 + dec_a * d * k).sum())
    padded_attn = tokenwise + B * (enc_a * E**2 + dec_a * Q * E)
    return useful, computed, per_sample, padded_attn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=96, help="fake corpus rows")
    parser.add_argument("--batch", type=int, default=32, help="rank microbatch (recipe: 32)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "padding_cpu.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = write_fake_corpus(path=Path(tmp) / "v1.zarr", n_samples=args.samples, modalities="v1",
                                   samples_per_shard=16, n_dropped=0)  # fmt: skip
        cfg = LoaderConfig(corpus=str(corpus), global_batch=args.batch)  # recipe defaults otherwise
        specs = BatchDataset(cfg, epoch=0).reader.specs
        by_size = {}
        for size in ("nano", "base", "large"):
            with torch.device("meta"):
                by_size[size] = FlopModel.of(
                    LatentMIM(config=ModelConfig.from_names(size=size, modalities=[s.name for s in specs]))
                )
        totals = {s: [0.0, 0.0, 0.0, 0.0] for s in by_size}
        rows = []
        for epoch in range(args.epochs):
            ds = BatchDataset(cfg, epoch=epoch)
            for b in range(ds.num_batches()):
                batch = ds.batch(b)
                h = batch.data[specs[0].name].shape[1] // batch.patch_size
                row = {"epoch": epoch, "batch": b, "patch_size": batch.patch_size, "crop_tokens": h,
                       "timesteps": batch.timestamps.shape[1]}  # fmt: skip
                for size, f in by_size.items():
                    work = [0.0] * 4
                    for masks in (batch.masks_a, batch.masks_b):
                        work = [w + x for w, x in zip(work, padding_work(masks, f))]
                    totals[size] = [t + w for t, w in zip(totals[size], work)]
                    row[f"padding_share_{size}"] = 1 - work[0] / work[1]
                    row[f"packed_share_{size}"] = 1 - work[0] / work[2]
                    row[f"packed_padded_attention_share_{size}"] = 1 - work[0] / work[3]
                rows.append(row)
    shares = {s: 1 - t[0] / t[1] for s, t in totals.items()}
    packed = {s: 1 - t[0] / t[2] for s, t in totals.items()}
    packed_padded_attention = {s: 1 - t[0] / t[3] for s, t in totals.items()}
    saved = {s: 1 - t[2] / t[1] for s, t in totals.items()}
    report = {
        "benchmark": "share of transformer FLOPs spent on padding tokens: padded batches vs packed",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "batches": {
            "source": f"loader on a fake v1 corpus ({args.samples} samples, 9 modalities)",
            "microbatch": args.batch,
            "patch_sizes": [1, 8],
            "crop_tokens": [1, 12],
            "token_budget": 2250,
            "masking": "modality_cross_random",
            "count": len(rows),
        },
        "padding_share_of_flops": shares,
        "packed_padding_share_of_flops": packed,
        "packed_padded_attention_padding_share_of_flops": packed_padded_attention,
        "packed_flops_saved_vs_padded": saved,
        "per_batch": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for s, v in shares.items():
        print(f"{s}: {100 * v:.1f} % of transformer FLOPs on padding ({len(rows)} batches); packed: "
              f"{100 * packed[s]:.2f} % (per-sample attention), {100 * packed_padded_attention[s]:.1f} % "
              f"(padded attention)")  # fmt: skip
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
