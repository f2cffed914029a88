"""Token budget (recipe §8.4)."""

from __future__ import annotations

from olmoearth_data.modalities import modality_set
from olmoearth_model.budget import timesteps_for_budget, token_slots


def test_v1_table(v1) -> None:
    got = [timesteps_for_budget(h=h, specs=v1) for h in range(1, 13)]
    assert got == [12, 12, 12, 12, 12, 9, 6, 4, 3, 2, 2, 1]
    slots = [token_slots(h=h, timesteps=t, specs=v1) for h, t in zip(range(1, 13), got)]
    assert slots == [78, 312, 702, 1248, 1950, 2160, 2058, 1920, 1944, 1800, 2178, 1728]
    assert all(timesteps_for_budget(h=h, specs=v1) == min(12, 2250 // (6 * h * h) - 1) for h in range(1, 13))


def test_other_sets() -> None:
    s2 = modality_set("s2")  # 3 monthly bandsets, no static
    assert timesteps_for_budget(h=12, specs=s2) == min(12, 2250 // (3 * 144))
    static_only = modality_set(["worldcover", "srtm"])
    assert timesteps_for_budget(h=5, specs=static_only) == 1
    # static modalities alone beyond the budget: T is raised to 1
    assert timesteps_for_budget(h=12, specs=modality_set("v1"), budget=100) == 1
