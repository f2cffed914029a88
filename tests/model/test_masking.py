"""Masking strategies (recipe §5) and token-level missing flags."""

from __future__ import annotations

import numpy as np
import pytest

from olmoearth_data.modalities import modality_set
from olmoearth_model.batch import MISSING_VALUE, MaskValue
from olmoearth_model.masking import (
    MASKING_STRATEGIES,
    apply_bandset_rules,
    build_masking,
    present_bandsets,
    select_bandsets,
    token_missing,
)

ENC, TGT, DEC, MIS = (int(v) for v in MaskValue)
S2, S1, WC = "sentinel2_l2a", "sentinel1", "worldcover"


def _no_missing(specs, h: int, T: int) -> dict[str, np.ndarray]:
    return {s.name: np.zeros((h, h, T if s.is_multitemporal else 1, s.num_bandsets), bool) for s in specs}


def _random_missing(specs, h: int, T: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Whole modalities, whole timesteps and single tokens missing at random."""
    out = {}
    for s in specs:
        shape = (h, h, T if s.is_multitemporal else 1, s.num_bandsets)
        m = rng.random(shape) < 0.1
        if rng.random() < 0.4:
            m[:] = True
        if s.is_multitemporal:
            m[:, :, rng.random(shape[2]) < 0.3] = True
        out[s.name] = m
    return out


def test_worked_example_bandset_rules() -> None:
    """Recipe §12.3 item 5: one sample, 2×2 tokens, p = 1."""
    s2 = np.array([0, 2, 0, 2], dtype=np.int8).reshape(2, 2, 1, 1).repeat(3, axis=3)
    wc = np.array([0, 2, 2, 0], dtype=np.int8).reshape(2, 2, 1, 1)
    masks = {S2: s2, WC: wc}
    out = apply_bandset_rules(masks=masks, encoded={(S2, 0), (S2, 1)}, decoded={(S2, 1)})
    assert out[S2][..., 0].ravel().tolist() == [0, 1, 0, 1]  # encode-only
    assert out[S2][..., 1].ravel().tolist() == [0, 2, 0, 2]  # both
    assert out[S2][..., 2].ravel().tolist() == [1, 2, 1, 2]  # not encoded, not in D, still decoded
    assert out[WC].ravel().tolist() == [1, 2, 2, 1]  # map
    assert masks[S2][..., 0].ravel().tolist() == [0, 2, 0, 2]  # pure: inputs untouched


def test_role_frequencies_all_present(v1) -> None:
    """Recipe §5.2: P(both) = 2/3·6.5/12, P(encode-only) = 2/3·5.5/12, P(decode-only) = 1/3, never unused."""
    strategy = build_masking(name="modality_cross_random", specs=v1)
    rng = np.random.default_rng(7)
    missing = _no_missing(v1, h=3, T=2)
    encodable = [(s.name, i) for s in v1 if not s.is_map for i in range(s.num_bandsets)]
    counts = {"both": 0, "encode": 0, "decode": 0, "unused": 0}
    draws = 3000
    for _ in range(draws):
        masks = strategy(missing=missing, rng=rng)
        for name, i in encodable:
            band = masks[name][..., i]
            enc, dec = bool((band == ENC).any()), bool((band == DEC).any())
            counts["both" if enc and dec else "encode" if enc else "decode" if dec else "unused"] += 1
    n = draws * len(encodable)
    assert counts["both"] / n == pytest.approx(2 / 3 * 6.5 / 12, abs=0.02)
    assert counts["encode"] / n == pytest.approx(2 / 3 * 5.5 / 12, abs=0.02)
    assert counts["decode"] / n == pytest.approx(1 / 3, abs=0.02)
    assert counts["unused"] == 0


def test_maps_never_encoded_random_samples(v1) -> None:
    strategy = build_masking(name="modality_cross_random", specs=v1)
    rng = np.random.default_rng(3)
    small_p = 0
    for i in range(600):
        h, T = (1, 1) if i % 3 == 0 else (2, 2)
        missing = _random_missing(v1, h=h, T=T, rng=rng)
        masks = strategy(missing=missing, rng=rng)
        for s in v1:
            if s.is_map:
                assert not (masks[s.name] == ENC).any(), s.name
        step_a = strategy.random_masks(missing=missing, rng=np.random.default_rng(i))
        small_p += len(present_bandsets(masks=step_a, specs=v1, decode_only=strategy.decode_only)) <= 2
    assert small_p > 0  # the |P| ≤ 2 branches were exercised


def test_small_p_decision_never_encodes_a_map() -> None:
    """|P| ≤ 2: the reference would encode P[0] even if it is a map; we encode the first encodable one."""
    rng = np.random.default_rng(0)
    maps = {WC, "srtm"}
    assert select_bandsets(present=[(WC, 0), (S1, 0)], decode_only=maps, rng=rng) == ({(S1, 0)}, {(WC, 0)})
    assert select_bandsets(present=[(WC, 0), ("srtm", 0)], decode_only=maps, rng=rng) == (
        set(),
        {(WC, 0), ("srtm", 0)},
    )
    assert select_bandsets(present=[(WC, 0)], decode_only=maps, rng=rng) == (set(), set())
    # with an encodable bandset first the draw is the reference's
    assert select_bandsets(present=[(S2, 0), (S2, 1)], decode_only=maps, rng=rng) == ({(S2, 0)}, {(S2, 1)})
    assert select_bandsets(present=[(S1, 0)], decode_only=maps, rng=rng) == ({(S1, 0)}, set())

    # end to end, with a set that lists the map first: worldcover + sentinel1, one token each
    specs = modality_set([WC, S1])
    strategy = build_masking(name="modality_cross_random", specs=specs)
    for seed in range(50):
        masks = strategy(missing=_no_missing(specs, h=1, T=1), rng=np.random.default_rng(seed))
        assert masks[WC].ravel().tolist() != [ENC]
        assert masks[S1].ravel().tolist() == [ENC]  # fallback: a single non-missing token is encoded


def test_maps_encodable_ablation(v1) -> None:
    strategy = build_masking(name="modality_cross_random_maps_encodable", specs=v1)
    assert strategy.decode_only == frozenset()
    rng = np.random.default_rng(0)
    encoded_maps = 0
    for _ in range(50):
        masks = strategy(missing=_no_missing(v1, h=2, T=2), rng=rng)
        encoded_maps += sum(int((masks[s.name] == ENC).any()) for s in v1 if s.is_map)
    assert encoded_maps > 0


@pytest.mark.parametrize("name", sorted(MASKING_STRATEGIES))
def test_missing_never_encoded_or_decoded(v1, name: str) -> None:
    strategy = build_masking(name=name, specs=v1)
    rng = np.random.default_rng(11)
    for _ in range(100):
        missing = _random_missing(v1, h=2, T=4, rng=rng)
        masks = strategy(missing=missing, rng=rng)
        for s in v1:
            m = masks[s.name]
            assert m.dtype == np.int8 and m.shape == missing[s.name].shape
            assert np.array_equal(m == MIS, missing[s.name])
        any_encodable = any((~missing[s.name]).sum() > 0 for s in v1 if not s.is_map)
        if name.startswith("modality_cross") and any_encodable:
            assert (
                sum(int((masks[s.name] == ENC).sum()) for s in v1) > 0
            )  # fallback guarantees an encoder input


@pytest.mark.parametrize("name", sorted(MASKING_STRATEGIES))
def test_deterministic_from_seed(v1, name: str) -> None:
    strategy = build_masking(name=name, specs=v1)
    missing = _random_missing(v1, h=3, T=4, rng=np.random.default_rng(0))
    a = strategy(missing=missing, rng=np.random.default_rng(42))
    b = strategy(missing=missing, rng=np.random.default_rng(42))
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_random_is_step_a(v1) -> None:
    strategy = build_masking(name="random", specs=v1)
    masks = strategy(missing=_no_missing(v1, h=3, T=3), rng=np.random.default_rng(0))
    for s in v1:
        n = masks[s.name].size
        counts = np.bincount(masks[s.name].ravel(), minlength=4)
        assert counts.tolist() == [n // 2, n - 2 * (n // 2), n // 2, 0]


def test_space_shares_one_grid(v1) -> None:
    strategy = build_masking(name="space", specs=v1)
    masks = strategy(missing=_no_missing(v1, h=3, T=3), rng=np.random.default_rng(0))
    grid = masks[S2][:, :, 0, 0]
    assert np.bincount(grid.ravel(), minlength=4).tolist() == [4, 1, 4, 0]  # exact ⌊9/2⌋ / ⌊9/2⌋
    for m in masks.values():
        assert np.all(m == grid[:, :, None, None])


def test_time_whole_timesteps_and_fallback(v1) -> None:
    strategy = build_masking(name="time", specs=v1)
    masks = strategy(missing=_no_missing(v1, h=2, T=4), rng=np.random.default_rng(0))
    per_t = masks[S2][0, 0, :, 0]
    assert sorted(per_t.tolist()) == [ENC, ENC, DEC, DEC]
    for s in v1:
        if s.is_multitemporal:
            assert np.all(masks[s.name] == per_t[None, None, :, None])
    # two valid timesteps only: random masking, so roles vary inside a timestep
    missing = _no_missing(v1, h=3, T=4)
    for s in v1:
        if s.is_multitemporal:
            missing[s.name][:, :, 2:] = True
    masks = strategy(missing=missing, rng=np.random.default_rng(0))
    assert len(np.unique(masks[S2][:, :, 0])) > 1


def test_token_missing_any_pixel_any_band(v1, rng) -> None:
    s2 = v1[0]
    p, h, T = 3, 2, 2
    data = rng.standard_normal((h * p, h * p, T, s2.num_bands)).astype(np.float32)
    data[4, 1, 0, 5] = MISSING_VALUE  # one band of bandset 1, in token (1, 0), t = 0
    data[:, :, 1, 10] = MISSING_VALUE  # one band of bandset 2, everywhere at t = 1
    got = token_missing(data=data, spec=s2, patch_size=p)
    want = np.zeros((h, h, T, 3), bool)
    for i in range(h):
        for j in range(h):
            for t in range(T):
                for s, idx in enumerate(s2.bandset_band_indices()):
                    want[i, j, t, s] = (
                        data[i * p : (i + 1) * p, j * p : (j + 1) * p, t][..., idx] == MISSING_VALUE
                    ).any()
    assert np.array_equal(got, want)
    assert got[1, 0, 0, 1] and not got[1, 0, 0, 0] and got[:, :, 1, 2].all()
