"""Probes: labels at the token grid, a linear probe that learns a known function and not shuffled
labels, and the trainer's hook (mode kept, global RNG untouched, deterministic)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from olmoearth_data.modalities import modality_set
from olmoearth_model.data.reader import CorpusReader
from olmoearth_model.evaluation import EvaluationConfig, evaluate_encoder, evaluate_in_loop
from olmoearth_model.evaluation.encode import embed_tile, open_encodable
from olmoearth_model.evaluation.labels import TASKS, map_reader, token_labels
from olmoearth_model.evaluation.runner import labelled_tokens, probe_task, probe_units
from olmoearth_model.nn.encoder import Encoder
from olmoearth_model.nn.latent_mim import LatentMIM
from olmoearth_model.nn.sizes import ModelConfig, get_size

from .label_corpus import BLOCK, LABEL_CODES

CPU = torch.device("cpu")


def _frozen_encoder(depth: int = 0) -> Encoder:
    """A seeded random encoder without blocks: patch embedding, encodings, token selection, final norm.

    Random attention blocks mix a crop's tokens: with 4 random blocks (Nano) this task's probe stops
    near 0.75, with 1 block at 0.93–1.0 depending on the seed — the random-init floor of the eval
    tables is not the inputs' floor. Without blocks every token keeps its own input, so the probe must
    find the known function (1.0 measured)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        enc = Encoder(specs=modality_set("sentinel2_l2a,worldcover"), dim=64, depth=depth, num_heads=4,
                      drop_path=0.0)  # fmt: skip
    return enc.eval()


def test_token_labels_are_the_block_classes(label_corpus):
    maps, (task,) = map_reader(corpus=str(label_corpus), tasks=("worldcover",))
    raw = CorpusReader(label_corpus, modalities=["worldcover"]).group["worldcover/10m/data"][0, 0]
    blocks = raw[::BLOCK, ::BLOCK]  # every 8 × 8 block holds one class
    for patch_size in (BLOCK, 2 * BLOCK):
        got = token_labels(reader=maps, row=0, task=task, patch_size=patch_size)
        assert got.shape == (256 // patch_size,) * 2
        assert set(np.unique(got)) <= set(LABEL_CODES)
        if patch_size == BLOCK:
            np.testing.assert_array_equal(got, blocks)
        else:  # the most frequent of the 2 × 2 blocks
            counts = np.stack([(blocks.reshape(16, 2, 16, 2) == c).sum(axis=(1, 3)) for c in LABEL_CODES])
            assert np.all(counts.max(axis=0) == np.choose(np.searchsorted(LABEL_CODES, got), counts))


def test_linear_probe_learns_a_known_function_of_the_inputs(label_corpus):
    settings = EvaluationConfig(split="train", score_split="validation", tasks=("worldcover",),
                                probe_steps=300, timesteps=4)  # fmt: skip
    scores = evaluate_encoder(encoder=_frozen_encoder(), corpus=label_corpus, settings=settings, device=CPU)
    assert scores["eval/fit_units"] == 4 and scores["eval/score_units"] == 1
    assert scores["probe/worldcover/acc"] >= 0.95
    assert scores["probe/worldcover/miou"] >= 0.9


def test_linear_probe_stays_at_chance_on_shuffled_labels(label_corpus):
    fit, score = probe_units(corpus=label_corpus, split="train", score_split="validation", max_samples=64)
    encoder = _frozen_encoder()
    reader = open_encodable(encoder=encoder, corpus=str(label_corpus))
    maps, (task,) = map_reader(corpus=str(label_corpus), tasks=("worldcover",))
    rows = [u.row for u in fit + score]
    emb = {r: embed_tile(encoder=encoder, reader=reader, row=r, patch_size=BLOCK, crop_tokens=8,
                         timesteps=4, device=CPU) for r in rows}  # fmt: skip
    labels = {r: token_labels(reader=maps, row=r, task=task, patch_size=BLOCK) for r in rows}
    (xf, yf), (xs, ys) = labelled_tokens(fit, emb, labels), labelled_tokens(score, emb, labels)
    true = probe_task(task=task, fit=(xf, yf), score=(xs, ys), steps=300, seed=0)
    shuffled = np.random.default_rng(0).permutation(yf)
    chance = np.unique(ys, return_counts=True)[1].max() / len(ys)  # the majority class's share
    got = probe_task(task=task, fit=(xf, shuffled), score=(xs, ys), steps=300, seed=0)
    assert true["probe/worldcover/acc"] >= 0.95
    assert got["probe/worldcover/acc"] <= chance + 0.05


def test_regression_and_multilabel_tasks_score():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 16)).astype(np.float32)
    height = 3 * x[:, 0] - 2 * x[:, 1] + 20  # metres, an exact linear function
    fit, score = (x[:1500], height[:1500]), (x[1500:], height[1500:])
    got = probe_task(task=TASKS["canopy_height"], fit=fit, score=score, steps=300, seed=0)
    assert got["probe/canopy_height/rmse"] < 0.1 * height.std()
    multi = np.stack([x[:, 2] > 0.5, x[:, 3] < -0.5], axis=1).astype(np.int8)
    got = probe_task(task=TASKS["osm_raster"], fit=(x[:1500], multi[:1500]), score=(x[1500:], multi[1500:]),
                     steps=300, seed=0)  # fmt: skip
    assert got["probe/osm_raster/f1"] > 0.9


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_in_loop_hook_keeps_mode_and_rng_and_is_deterministic(fake_corpus, mode):
    torch.manual_seed(1)
    model = LatentMIM(config=ModelConfig(size=get_size("nano"), modalities=CorpusReader(fake_corpus).specs))
    model.train(mode == "train")
    settings = EvaluationConfig(every_steps=10, tasks=("worldcover",), probe_steps=50, timesteps=2,
                                token_budget=600)  # fmt: skip
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()[1].copy()
    first = evaluate_in_loop(model=model, corpus=fake_corpus, settings=settings, device=CPU, step=10)
    assert model.training == (mode == "train")
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], numpy_state)
    second = evaluate_in_loop(model=model, corpus=fake_corpus, settings=settings, device=CPU, step=20)
    first.pop("eval/seconds"), second.pop("eval/seconds")
    assert first == second
    assert np.isfinite(first["val_loss"]) and first["val_loss"] > 0
    # the fake corpus's validation split is one sample (one cell): fit west halves, score east halves
    assert first["eval/fit_units"] == first["eval/score_units"] == 1
    assert 0 <= first["probe/worldcover/miou"] <= first["probe/worldcover/acc"] <= 1
    assert "knn/worldcover/acc" in first
