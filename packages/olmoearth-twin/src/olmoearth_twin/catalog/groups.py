"""Granule groups: granules that share sample tiles, with their COG crops on one common pixel grid.

Granules touching a common sample tile are acquired together (same datatakes), so they form one
group with one set of synthetic fields. Each granule's COGs cover only a crop: the part of its sample
tiles inside the granule, padded by :data:`PAD_M` and snapped outward to the granule's 60 m grid (so
the 10/20/60 m COGs share bounds). Granule corners sit at 100 km·k − 20 m, so all crops in a zone are
aligned to 20 m and fit one group grid at 10 m.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from olmoearth_data.grid import Tile
from olmoearth_data.samples import Sample
from olmoearth_twin.catalog.mgrs import Granule, granules_intersecting

PAD_M = 256.0
#: Largest group grid side (10 m px) we synthesise; far-apart tiles of one granule would exceed it.
MAX_GROUP_PX = 2400


@dataclass(frozen=True)
class GranuleCrop:
    """One granule of a group and the window of its COGs on the group grid."""

    granule: Granule
    bounds: tuple[float, float, float, float]  # crop (xmin, ymin, xmax, ymax), metres
    window: tuple[int, int, int, int]  # (row, col, height, width) in 10 m px of the group grid


@dataclass(frozen=True)
class GranuleGroup:
    """Granules acquired together and the samples they cover."""

    epsg: int
    samples: tuple[Sample, ...]
    crops: tuple[GranuleCrop, ...]
    bounds: tuple[float, float, float, float]  # group grid, metres

    @property
    def shape(self) -> tuple[int, int]:
        xmin, ymin, xmax, ymax = self.bounds
        return (round((ymax - ymin) / 10), round((xmax - xmin) / 10))

    def pixel_box(self, *, tile: Tile) -> tuple[int, int, int, int]:
        """(row, col, height, width) of ``tile`` on the group grid (may extend past it)."""
        xmin, _, _, ymax = self.bounds
        txmin, tymin, txmax, tymax = tile.bounds
        return (
            round((ymax - tymax) / 10),
            round((txmin - xmin) / 10),
            round((tymax - tymin) / 10),
            round((txmax - txmin) / 10),
        )

    @property
    def key(self) -> str:
        """Stable text id (seeds the group's random generator)."""
        return f"{self.epsg}:" + ",".join(c.granule.mgrs for c in self.crops)

    def rng(self, *, seed: int) -> np.random.Generator:
        """The group's own generator: the Sentinel-2 catalogue draws its ground from it first, so
        another catalogue of the same samples and seed can redraw the same ground."""
        digest = hashlib.sha256(self.key.encode()).digest()[:8]
        return np.random.default_rng([int(seed), int.from_bytes(digest, "little")])


def _crop(granule: Granule, tiles: list[Tile]) -> tuple[float, float, float, float]:
    gxmin, gymin, gxmax, gymax = granule.bounds
    parts = [
        (max(t.bounds[0], gxmin), max(t.bounds[1], gymin), min(t.bounds[2], gxmax), min(t.bounds[3], gymax))
        for t in tiles
    ]
    xmin, ymin = min(p[0] for p in parts) - PAD_M, min(p[1] for p in parts) - PAD_M
    xmax, ymax = max(p[2] for p in parts) + PAD_M, max(p[3] for p in parts) + PAD_M
    # Snap outward to the granule's 60 m grid (anchored at its top-left corner), then clip to it.
    xmin = gxmin + 60 * math.floor((xmin - gxmin) / 60)
    xmax = gxmin + 60 * math.ceil((xmax - gxmin) / 60)
    ymax = gymax - 60 * math.floor((gymax - ymax) / 60)
    ymin = gymax - 60 * math.ceil((gymax - ymin) / 60)
    return (max(xmin, gxmin), max(ymin, gymin), min(xmax, gxmax), min(ymax, gymax))


def group_samples(*, samples: tuple[Sample, ...]) -> list[GranuleGroup]:
    """Connected components of (granule — sample tile) incidence, each with its crops and grid."""
    by_granule: dict[Granule, list[Sample]] = {}
    for sample in samples:
        tile = sample.tile
        granules = granules_intersecting(epsg=tile.epsg, bounds=tile.bounds)
        if not granules:
            raise ValueError(f"tile {sample.tile.id} is outside every Sentinel-2 granule of its zone")
        for granule in granules:
            by_granule.setdefault(granule, []).append(sample)
    parent = {g: g for g in by_granule}

    def root(g: Granule) -> Granule:
        while parent[g] != g:
            g = parent[g]
        return g

    tile_owner: dict[str, Granule] = {}
    for granule in sorted(by_granule):
        for sample in by_granule[granule]:
            if sample.tile.id in tile_owner:
                parent[root(granule)] = root(tile_owner[sample.tile.id])
            else:
                tile_owner[sample.tile.id] = granule
    components: dict[Granule, list[Granule]] = {}
    for granule in sorted(by_granule):
        components.setdefault(root(granule), []).append(granule)
    groups = []
    for members in components.values():
        bounds = {g: _crop(g, [s.tile for s in by_granule[g]]) for g in members}
        gb = (
            min(b[0] for b in bounds.values()),
            min(b[1] for b in bounds.values()),
            max(b[2] for b in bounds.values()),
            max(b[3] for b in bounds.values()),
        )
        crops = tuple(
            GranuleCrop(
                granule=g,
                bounds=b,
                window=(
                    round((gb[3] - b[3]) / 10),
                    round((b[0] - gb[0]) / 10),
                    round((b[3] - b[1]) / 10),
                    round((b[2] - b[0]) / 10),
                ),
            )
            for g, b in bounds.items()
        )
        group_samples_ = tuple(sorted({s for g in members for s in by_granule[g]}, key=samples.index))
        group = GranuleGroup(epsg=members[0].epsg, samples=group_samples_, crops=crops, bounds=gb)
        if max(group.shape) > MAX_GROUP_PX:
            raise ValueError(
                f"sample tiles {[s.tile.id for s in group.samples]} span {group.shape} px at 10 m in "
                f"granules {[c.granule.mgrs for c in crops]}; keep tiles of one granule within "
                f"{MAX_GROUP_PX * 10 / 1000:.0f} km of each other"
            )
        groups.append(group)
    return groups
