"""The random-init baseline row of ``olmoearth-model eval`` is the encoder training starts from: built
anew for the seed, nothing carried over from the trained encoder it is compared with."""

from __future__ import annotations

import torch

from olmoearth_data.modalities import modality_set
from olmoearth_model.evaluation.commands import random_encoder_like
from olmoearth_model.nn.encoder import Encoder
from olmoearth_model.nn.encodings import get_month_table
from olmoearth_model.nn.sizes import get_size


def _nano() -> Encoder:
    size = get_size("nano")
    return Encoder(specs=modality_set("default"), dim=size.encoder_dim, depth=size.encoder_depth,
                   num_heads=size.encoder_heads, mlp_ratio=size.mlp_ratio, drop_path=0.0)  # fmt: skip


def test_the_baseline_depends_on_the_seed_only() -> None:
    trained = [_nano(), _nano()]
    with torch.no_grad():  # two "trained" encoders: every parameter moved, trainable or frozen
        for k, encoder in enumerate(trained):
            for p in encoder.parameters():
                p.add_(0.1 * (k + 1))
    baselines = [random_encoder_like(e, seed=0) for e in trained]
    torch.manual_seed(0)
    built = _nano().state_dict()
    for baseline in baselines:
        state = baseline.state_dict()
        assert state.keys() == built.keys()
        assert all(torch.equal(state[k], built[k]) for k in built), "the baseline is a fresh encoder"
        assert not baseline.training
    # what a fresh encoder holds, that resetting a trained one would not restore
    assert all(torch.count_nonzero(p) == 0 for p in baselines[0].encodings.bandset_embed.values())
    month = baselines[0].encodings.month_table.weight
    torch.testing.assert_close(month, get_month_table(dim=month.shape[1]))
    assert not torch.equal(random_encoder_like(trained[0], seed=1).blocks[0].attn.q.weight,
                           baselines[0].blocks[0].attn.q.weight)  # fmt: skip
