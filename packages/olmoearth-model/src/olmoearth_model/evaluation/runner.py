"""The evaluation: validation loss on held-out samples, and probes of frozen embeddings on the maps.

Which samples (docs/evaluation.md): probes are *fit* on the complete samples of ``settings.split``
and *scored* on those of ``settings.score_split``. Without a score split (the training loop's case,
which must not look at ``test``), the split's samples are partitioned by 40.96 km cell — cells ranked
by their split hash, alternately fit and score — and when they all lie in one cell (tiny corpora such
as the demo's), every tile's west half is fit and its east half scored. Either way no token is both
fit and scored, and training samples never give a label.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import zarr

from olmoearth_data.missing import SampleStatus
from olmoearth_data.splits import cell_hash, check_split, coarse_cell_id, corpus_splits
from olmoearth_model.data.dataset import BatchDataset, LoaderConfig
from olmoearth_model.evaluation.config import EvaluationConfig
from olmoearth_model.evaluation.encode import TileEmbedding, embed_tile, open_encodable
from olmoearth_model.evaluation.labels import ProbeTask, map_reader, token_labels
from olmoearth_model.evaluation.probes import (
    classification_scores,
    f1_score,
    fit_linear_probe,
    knn_accuracy,
    predict_linear_probe,
)
from olmoearth_model.losses import LossConfig
from olmoearth_model.nn.encoder import Encoder
from olmoearth_model.nn.latent_mim import LatentMIM
from olmoearth_model.objective import latent_mim_objective

#: Most fit tokens per task (a seeded subsample beyond): keeps a probe's full-batch steps cheap.
MAX_FIT_TOKENS = 65_536


@dataclass(frozen=True)
class Unit:
    """Part of a sample's tile the probes use: the whole tile, or its west or east half."""

    row: int
    region: str  # "tile" | "west" | "east"

    def columns(self, width: int) -> slice:
        return {"tile": slice(0, width), "west": slice(0, width // 2), "east": slice(width // 2, width)}[
            self.region
        ]


def probe_units(
    *, corpus: Path | str, split: str, score_split: str | None, max_samples: int
) -> tuple[list[Unit], list[Unit]]:
    """``(fit, score)`` units (module docstring); each split's first ``max_samples`` complete rows."""
    check_split(split)
    check_split(score_split)
    group = zarr.open_group(str(corpus), mode="r")
    complete = np.asarray(group["status"][:]) == SampleStatus.COMPLETE
    splits = corpus_splits(corpus)

    def rows_of(name: str) -> list[int]:
        rows = np.flatnonzero(complete & (splits == name))[:max_samples].tolist()
        if not rows:
            raise ValueError(f"corpus {corpus} has no complete sample in the {name!r} split")
        return rows

    fit_rows = rows_of(split)
    if score_split is not None and score_split != split:
        return [Unit(r, "tile") for r in fit_rows], [Unit(r, "tile") for r in rows_of(score_split)]
    tile_ids = [str(t) for t in group["tile_id"][:]]
    cell = {r: coarse_cell_id(tile_ids[r]) for r in fit_rows}
    ranked = sorted(set(cell.values()), key=lambda c: (cell_hash(c), c))
    if len(ranked) >= 2:
        fit_cells = set(ranked[0::2])
        return (
            [Unit(r, "tile") for r in fit_rows if cell[r] in fit_cells],
            [Unit(r, "tile") for r in fit_rows if cell[r] not in fit_cells],
        )
    return [Unit(r, "west") for r in fit_rows], [Unit(r, "east") for r in fit_rows]


def labelled_tokens(
    units: list[Unit], embeddings: dict[int, TileEmbedding], labels: dict[int, np.ndarray | None]
) -> tuple[np.ndarray, np.ndarray]:
    """Features ``[N, D]`` and labels of the valid, labelled tokens of ``units``."""
    xs, ys = [], []
    for u in units:
        lab = labels.get(u.row)
        if lab is None:
            continue
        emb = embeddings[u.row]
        cols = u.columns(emb.valid.shape[1])
        lab = lab[:, cols]
        ok = emb.valid[:, cols] & _label_valid(lab)
        xs.append(emb.tokens[:, cols][ok])
        ys.append(lab[ok])
    if not xs:
        return np.zeros((0, 1), np.float32), np.zeros(0)
    return np.concatenate(xs), np.concatenate(ys)


def _label_valid(lab: np.ndarray) -> np.ndarray:
    if lab.ndim == 3:  # multilabel: every token has a 0/1 per category
        return np.ones(lab.shape[:2], dtype=bool)
    if lab.dtype.kind == "f":
        return ~np.isnan(lab)
    return lab >= 0


def probe_task(
    *,
    task: ProbeTask,
    fit: tuple[np.ndarray, np.ndarray],
    score: tuple[np.ndarray, np.ndarray],
    steps: int,
    seed: int,
) -> dict[str, float]:
    """Fit the linear probe on ``fit`` = (features ``[N, D]``, labels) and score it on ``score``.

    Returns ``probe/<task>/<metric>`` (``miou``/``acc``, ``rmse``, ``f1``; ``acc``+``f1`` for binary),
    nothing when either side has no labelled token or the fit labels hold a single class.
    """
    (xf, yf), (xs, ys) = fit, score
    if len(xf) == 0 or len(xs) == 0:
        return {}
    if len(xf) > MAX_FIT_TOKENS:
        keep = np.sort(np.random.default_rng([seed, 7]).choice(len(xf), MAX_FIT_TOKENS, replace=False))
        xf, yf = xf[keep], yf[keep]
    prefix = f"probe/{task.name}/"
    if task.kind in ("classes", "binary"):
        codes = np.unique(yf)
        if len(codes) < 2:
            return {}
        target = np.searchsorted(codes, yf)
        head, fnorm, tnorm = fit_linear_probe(features=xf, targets=target, kind="classes", steps=steps)
        pred = codes[predict_linear_probe(head=head, feature_norm=fnorm, target_norm=tnorm,
                                          features=xs, kind="classes")]  # fmt: skip
        if task.kind == "binary":
            return {
                prefix + "acc": float((pred == ys).mean()),
                prefix + "f1": f1_score(truth=ys, predicted=pred),
            }
        return {prefix + k: v for k, v in classification_scores(truth=ys, predicted=pred).items()}
    head, fnorm, tnorm = fit_linear_probe(features=xf, targets=yf, kind=task.kind, steps=steps)
    pred = predict_linear_probe(head=head, feature_norm=fnorm, target_norm=tnorm, features=xs, kind=task.kind)
    if task.kind == "regression":
        return {prefix + "rmse": float(np.sqrt(np.mean((pred - ys) ** 2)))}
    return {prefix + "f1": f1_score(truth=ys, predicted=pred)}


def _unit_majority(units: list[Unit], embeddings, labels) -> tuple[np.ndarray, np.ndarray]:
    """Per unit with WorldCover labels: mean token embedding ``[U, D]`` and majority class ``[U]``."""
    pooled, majority = [], []
    for u in units:
        x, y = labelled_tokens([u], embeddings, labels)
        if len(y):
            values, counts = np.unique(y, return_counts=True)
            pooled.append(x.mean(axis=0))
            majority.append(values[counts.argmax()])
    dim = next(iter(embeddings.values())).tokens.shape[-1]
    return np.asarray(pooled, np.float32).reshape(-1, dim), np.asarray(majority)


@torch.no_grad()
def evaluate_encoder(
    *, encoder: Encoder, corpus: Path | str, settings: EvaluationConfig, device: torch.device
) -> dict[str, float]:
    """Probe scores of the frozen ``encoder`` (in eval mode) on ``corpus``'s maps (module docstring).

    Returns ``probe/<task>/<metric>``, ``knn/worldcover/acc`` (sample-level majority class), and
    ``eval/fit_units`` / ``eval/score_units``. Tasks whose map the corpus lacks are left out.
    """
    corpus = str(corpus)
    fit_units, score_units = probe_units(
        corpus=corpus,
        split=settings.split,
        score_split=settings.score_split,
        max_samples=settings.max_samples,
    )
    maps, tasks = map_reader(corpus=corpus, tasks=settings.tasks)
    obs = open_encodable(encoder=encoder, corpus=corpus, inputs=settings.inputs)
    rows = sorted({u.row for u in fit_units + score_units})
    embeddings = {
        r: embed_tile(encoder=encoder, reader=obs, row=r, patch_size=settings.patch_size,
                      crop_tokens=settings.crop_tokens, timesteps=settings.timesteps, device=device,
                      crops_per_call=settings.batch_size * 2)
        for r in rows
    }  # fmt: skip
    results: dict[str, float] = {"eval/fit_units": len(fit_units), "eval/score_units": len(score_units)}
    for task in tasks:
        labels = {
            r: token_labels(reader=maps, row=r, task=task, patch_size=settings.patch_size) for r in rows
        }
        results |= probe_task(
            task=task,
            fit=labelled_tokens(fit_units, embeddings, labels),
            score=labelled_tokens(score_units, embeddings, labels),
            steps=settings.probe_steps,
            seed=settings.seed,
        )
        if task.name == "worldcover":
            ref, ref_y = _unit_majority(fit_units, embeddings, labels)
            qry, qry_y = _unit_majority(score_units, embeddings, labels)
            if len(ref) and len(qry):
                results["knn/worldcover/acc"] = knn_accuracy(
                    reference=ref, reference_labels=ref_y, query=qry, query_labels=qry_y, k=settings.knn_k
                )
    return results


@torch.no_grad()
def validation_loss(
    *, model: LatentMIM, corpus: Path | str, settings: EvaluationConfig, device: torch.device
) -> dict[str, float]:
    """The pre-training objective (default :class:`LossConfig`) on ``settings.split``'s samples.

    Fixed batches — patch size, crop and masks from ``settings.seed`` (numpy streams of the loader) —
    so the value is comparable across steps. Returns ``val_loss``, ``val_patch`` (mean of both views'
    patch discrimination) and ``val_contrastive``; ``{}`` when the split has no complete sample.
    """
    modalities = tuple(s.name for s in model.config.modalities)
    base = LoaderConfig(corpus=str(corpus), global_batch=1, seed=settings.seed, masking=settings.masking,
                        token_budget=settings.token_budget, patch_sizes=(settings.patch_size,) * 2,
                        crop_tokens=(settings.crop_tokens,) * 2, modalities=modalities,
                        split=settings.split)  # fmt: skip
    n = min(len(BatchDataset(base, epoch=0).usable_indices), settings.max_samples)
    if n == 0:
        return {}
    size = min(settings.batch_size, n)
    dataset = BatchDataset(LoaderConfig(**{**base.__dict__, "global_batch": size}), epoch=0)
    sums = {"val_loss": 0.0, "val_patch": 0.0, "val_contrastive": 0.0}
    batches = n // size
    for b in range(batches):
        out = latent_mim_objective(model=model, batch=dataset.batch(b).to(device), config=LossConfig())
        sums["val_loss"] += float(out.loss) / batches
        sums["val_patch"] += float(0.5 * (out.patch_a + out.patch_b)) / batches
        sums["val_contrastive"] += float(out.contrastive) / batches
    return sums


def evaluate_in_loop(
    *, model: LatentMIM, corpus: Path | str, settings: EvaluationConfig, device: torch.device, step: int
) -> dict[str, float]:
    """What the trainer calls every ``settings.every_steps`` steps; returns the metrics to log.

    The model is evaluated in eval mode and left in the mode it was found in; nothing draws from the
    global torch or numpy RNG (batches and probes use their own seeded streams), so training after an
    evaluation is what it would have been without it. Keys: ``val_*`` (:func:`validation_loss`),
    ``probe/…`` and ``knn/…`` (:func:`evaluate_encoder`), ``eval/seconds``.
    """
    del step  # the evaluation does not depend on the step: the same samples and batches every time
    was_training = model.training
    model.eval()
    start = time.perf_counter()
    try:
        results: dict[str, float] = {}
        if settings.validation_loss:
            results |= validation_loss(model=model, corpus=corpus, settings=settings, device=device)
        if settings.tasks:
            results |= evaluate_encoder(
                encoder=model.encoder, corpus=corpus, settings=settings, device=device
            )
    finally:
        model.train(was_training)
    results["eval/seconds"] = time.perf_counter() - start
    return results
