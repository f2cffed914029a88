"""Land cover of the synthetic ground: the twin's WorldCover classes, a known function of what
Sentinel-2 sees there.

Each granule group's ground (:func:`~olmoearth_twin.catalog.scene.make_ground`) is redrawn from the
group's generator exactly as the Sentinel-2 catalogue draws it, classified, and pasted into the
WorldCover crops (:mod:`~olmoearth_twin.catalog.degree_layers`), so a probe trained on the corpus's
WorldCover map learns something about its inputs — with a random window of a real WorldCover tile
(the earlier twin) the labels were independent of the pixels and every encoder probed at chance.

Classes (WorldCover codes, per 10 m pixel of the group grid), first match wins:

* 80 permanent water — the lake (``water ≥ 0.5``);
* 40 cropland — the centre-pivot discs, green part of the year;
* 50 built-up — brightest ground: local mean of (red + NIR)/2 over 90 m above the source scene's
  85th percentile;
* 20 shrubland — darkest ground: that local mean below the 25th percentile;
* 30 grassland — the greenest of the rest: local mean NDVI above the 80th percentile;
* 60 bare / sparse vegetation — the rest.

The percentiles are of the real fixture scene (:class:`~olmoearth_twin.catalog.scene.Sources`), so the
function is the same for every group and seed. The semantics are nominal (the fixture is a desert);
what matters for evaluation is that the map is spatially coherent and decided by the spectra,
texture and phenology the encoder sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from affine import Affine

from olmoearth_data.samples import Sample
from olmoearth_twin.catalog.fields import box_mean
from olmoearth_twin.catalog.groups import group_samples
from olmoearth_twin.catalog.scene import Ground, Sources, make_ground

WATER, CROPLAND, BUILT_UP, SHRUBLAND, GRASSLAND, BARE = 80, 40, 50, 20, 30, 60
#: Half-width (10 m px) of the window the brightness and NDVI are averaged over: 90 m wide.
_RADIUS_PX = 4


@dataclass(frozen=True)
class CoverThresholds:
    """Cut points on the locally averaged ground spectra (DN and NDVI)."""

    dark: float
    bright: float
    green: float

    @classmethod
    def from_sources(cls, *, sources: Sources) -> CoverThresholds:
        brightness, ndvi = _local_spectra(red=sources.R, nir=sources.N)
        dark, bright = np.quantile(brightness, [0.25, 0.85])
        return cls(dark=float(dark), bright=float(bright), green=float(np.quantile(ndvi, 0.80)))


@dataclass(frozen=True)
class GroupLandCover:
    """WorldCover classes (uint8 ``[H, W]``, never 0) on one group's 10 m UTM grid."""

    epsg: int
    transform: Affine
    classes: np.ndarray


def _local_spectra(*, red: np.ndarray, nir: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    brightness = box_mean(a=(red + nir) / 2.0, radius=_RADIUS_PX)
    ndvi = box_mean(a=(nir - red) / np.maximum(nir + red, 1.0), radius=_RADIUS_PX)
    return brightness, ndvi


def classify_ground(*, ground: Ground, thresholds: CoverThresholds) -> np.ndarray:
    """WorldCover class per 10 m pixel of ``ground`` (uint8 ``[H, W]``), rules in the module docstring."""
    brightness, ndvi = _local_spectra(red=ground.R, nir=ground.N)
    classes = np.full(ground.R.shape, BARE, dtype=np.uint8)
    classes[ndvi > thresholds.green] = GRASSLAND
    classes[brightness < thresholds.dark] = SHRUBLAND
    classes[brightness > thresholds.bright] = BUILT_UP
    for disc, _, _ in ground.pivots:
        classes[disc >= 0.5] = CROPLAND
    classes[ground.water >= 0.5] = WATER
    return classes


def group_land_cover(*, samples: Sequence[Sample], seed: int, sources: Sources) -> list[GroupLandCover]:
    """The land cover of every granule group of ``samples``: the ground the Sentinel-2 catalogue of
    the same samples and ``seed`` renders, classified."""
    thresholds = CoverThresholds.from_sources(sources=sources)
    out = []
    for group in group_samples(samples=tuple(samples)):
        ground = make_ground(
            rng=group.rng(seed=seed),
            sources=sources,
            shape=group.shape,
            anchor=group.pixel_box(tile=group.samples[0].tile),
        )
        xmin, _, _, ymax = group.bounds
        out.append(
            GroupLandCover(
                epsg=group.epsg,
                transform=Affine(10.0, 0.0, xmin, 0.0, -10.0, ymax),
                classes=classify_ground(ground=ground, thresholds=thresholds),
            )
        )
    return out
