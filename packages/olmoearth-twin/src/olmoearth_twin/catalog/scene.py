"""Pixel synthesis for one granule group: static ground, per-datatake fields, per-granule rasters.

All fields live on the group's 10 m grid (top-left ``origin``, aligned to 20 m so every granule's 10
and 20 m pixels coincide with it) and are sliced per granule, so granules of one datatake agree where
they overlap (same clouds, same ground). Per resolution a pixel is valid iff its centre lies on the
valid side of the datatake's swath edge (if any); invalid pixels are 0 in every asset.

Ground: a window of the real B04/B08/B11 (see :mod:`olmoearth_twin.catalog.bands`), chosen among 32
random even offsets as the one with the fewest SCL cloud pixels in the real scene, plus a lake (the
dark valid pixels: NIR/SWIR DN 1–50, SWIR slightly negative in places) centred in the group's first
sample tile, and 3 centre-pivot fields whose greenness follows a yearly cycle.

Per datatake: cloud opacity from a fractal field thresholded to the cloud target (SCL 9 where thick,
8 at the rims, each cloud pixel at least 55 % opaque in the reflectance bands), thin cirrus (SCL 10,
+8 % of the cloud reflectance), cloud shadows (SCL 3, cloud mask moved 1.5 km·tan(zenith) away from the
sun, reflectance × 0.55), a seasonal factor and a ±1.5 % gain.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

from olmoearth_twin.catalog.bands import BOA_ADD_OFFSET_DN, REFLECTANCE_BANDS, VEGETATION_RNS
from olmoearth_twin.catalog.fields import block_mean, repeat_up, shift, smooth_field
from olmoearth_twin.catalog.schedule import Acquisition

_SOURCE_FILES = {"R": "B04.tif", "N": "B08.tif", "S": "B11.tif", "SCL": "SCL.tif"}
_CLOUD_HEIGHT_M = 1500.0


@dataclass(frozen=True)
class Sources:
    """The real fixture rasters: R/N ``[1098, 1098]`` and S/SCL ``[549, 549]`` (float32 / uint8)."""

    R: np.ndarray
    N: np.ndarray
    S: np.ndarray
    SCL: np.ndarray

    @classmethod
    def load(cls, *, folder: Path) -> Sources:
        arrays = {}
        for key, name in _SOURCE_FILES.items():
            with rasterio.open(folder / name) as ds:
                arrays[key] = ds.read(1)
        return cls(
            R=arrays["R"].astype(np.float32),
            N=arrays["N"].astype(np.float32),
            S=arrays["S"].astype(np.float32),
            SCL=arrays["SCL"],
        )


@dataclass(frozen=True)
class Ground:
    """Static fields of a group on its 10 m grid ``[H, W]`` (S on the 20 m grid ``[H/2, W/2]``)."""

    R: np.ndarray
    N: np.ndarray
    S: np.ndarray
    water: np.ndarray  # 1.0 where lake
    water_var: np.ndarray  # in [0.5, 1.5]: spatial variation of water reflectance
    pivots: tuple[tuple[np.ndarray, float, float], ...]  # (disc mask, peak day of year, amplitude)


def make_ground(
    *, rng: np.random.Generator, sources: Sources, shape: tuple[int, int], anchor: tuple[int, int, int, int]
) -> Ground:
    """Ground of a group grid of ``shape`` (10 m px, both even); ``anchor`` = (row, col, h, w) px box
    of the first sample tile, where the lake is placed."""
    h, w = shape
    pad = max(0, max(h, w) - sources.R.shape[0] + 2)
    pad += pad % 2
    R, N = (np.pad(a, pad, mode="symmetric") for a in (sources.R, sources.N))
    S, SCL = (np.pad(a, pad // 2, mode="symmetric") for a in (sources.S, sources.SCL))
    best: tuple[float, int, int] | None = None
    for _ in range(32):
        r0 = 2 * int(rng.integers(0, (R.shape[0] - h) // 2 + 1))
        c0 = 2 * int(rng.integers(0, (R.shape[1] - w) // 2 + 1))
        cloudy = float(np.isin(SCL[r0 // 2 : (r0 + h) // 2, c0 // 2 : (c0 + w) // 2], (8, 9, 10)).mean())
        if best is None or cloudy < best[0]:
            best = (cloudy, r0, c0)
    assert best is not None
    _, r0, c0 = best
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ar, ac, ah, aw = anchor
    cy, cx = ar + ah * rng.uniform(0.3, 0.7), ac + aw * rng.uniform(0.3, 0.7)
    ry, rx = rng.uniform(22, 40), rng.uniform(30, 50)  # lake radii in 10 m px
    wobble = smooth_field(rng=rng, shape=shape, scale_px=30)
    water = ((((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 + 0.6 * (wobble - 0.5)) < 1.0).astype(np.float32)
    water_var = 0.5 + smooth_field(rng=rng, shape=shape, scale_px=20)
    pivots = []
    for _ in range(3):
        py, px, radius = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(25, 45)
        disc = ((yy - py) ** 2 + (xx - px) ** 2 <= radius**2).astype(np.float32) * (1.0 - water)
        pivots.append((disc, float(rng.uniform(0, 365)), float(rng.uniform(0.6, 1.0))))
    return Ground(
        R=R[r0 : r0 + h, c0 : c0 + w].copy(),
        N=N[r0 : r0 + h, c0 : c0 + w].copy(),
        S=S[r0 // 2 : (r0 + h) // 2, c0 // 2 : (c0 + w) // 2].copy(),
        water=water,
        water_var=water_var,
        pivots=tuple(pivots),
    )


@dataclass(frozen=True)
class SwathEdge:
    """Straight swath edge: a point is valid iff ``(x - x0)·nx + (y - y0)·ny >= 0`` (UTM metres)."""

    x0: float
    y0: float
    nx: float
    ny: float

    def valid(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x - self.x0) * self.nx + (y - self.y0) * self.ny >= 0


@dataclass(frozen=True)
class SceneFields:
    """Per-datatake fields on the group grid (10 m ``[H, W]``; ``*20`` on ``[H/2, W/2]``)."""

    opacity: np.ndarray  # cloud opacity in [0, 1]
    cloud20: np.ndarray  # uint8: 0, 8 (medium) or 9 (high probability)
    cirrus20: np.ndarray  # bool
    shadow20: np.ndarray  # bool
    aot: np.ndarray  # AOT × 1000
    wvp: np.ndarray  # water vapour cm × 1000
    vegetation: np.ndarray  # green fraction of the pivot fields on this date
    season: float  # in [-1, 1], +1 at midsummer
    gain: float
    edge: SwathEdge | None


def solar_angles(*, lat: float, when: dt.datetime) -> tuple[float, float]:
    """(mean solar zenith, azimuth) in degrees at 10:30 local solar time (simple declination model)."""
    doy = when.timetuple().tm_yday
    decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365.0)
    phi, hour = math.radians(lat), math.radians(-22.5)
    cos_z = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(hour)
    zenith = math.acos(max(-1.0, min(1.0, cos_z)))
    sin_az = -math.sin(hour) * math.cos(decl) / max(math.sin(zenith), 1e-6)
    cos_az = (math.sin(decl) - math.sin(phi) * cos_z) / max(math.cos(phi) * math.sin(zenith), 1e-6)
    azimuth = math.degrees(math.atan2(sin_az, cos_az)) % 360.0
    return math.degrees(zenith), azimuth


def make_scene_fields(
    *, ground: Ground, acq: Acquisition, lat: float, edge: SwathEdge | None, valid20: np.ndarray
) -> SceneFields:
    """Clouds, shadows, atmosphere and vegetation of one datatake.

    ``valid20`` (bool ``[H/2, W/2]``) marks the group's 20 m pixels the swath covers; the cloud
    threshold is set so that the cloudy share of those equals ``acq.cloud_target``.
    """
    rng = np.random.default_rng(acq.seed)
    shape = ground.R.shape
    field = smooth_field(rng=rng, shape=shape, scale_px=float(rng.uniform(60, 160)))
    field20 = block_mean(a=field, factor=2)
    inside = field20[valid20] if valid20.any() else field20.ravel()
    frac = acq.cloud_target / 100.0
    t = float(np.quantile(inside, 1.0 - frac)) if frac > 0 else 2.0
    thick = float(np.quantile(inside, 1.0 - 0.55 * frac)) if frac > 0 else 2.0
    cloud20 = np.where(field20 > thick, 9, np.where(field20 > t, 8, 0)).astype(np.uint8)
    cloudy10 = repeat_up(a=cloud20 > 0, factor=2)
    opacity = np.clip((field - t + 0.03) / 0.2, 0.0, 1.0)
    opacity = np.where(cloudy10, np.maximum(opacity, 0.55), opacity).astype(np.float32)
    cirrus_field = block_mean(a=smooth_field(rng=rng, shape=shape, scale_px=200), factor=2)
    cirrus_frac = min(0.06, 0.25 * frac)
    cirrus20 = (
        (cirrus_field > np.quantile(cirrus_field, 1.0 - cirrus_frac)) & (cloud20 == 0)
        if cirrus_frac
        else np.zeros_like(cloud20, dtype=bool)
    )
    zenith, azimuth = solar_angles(lat=lat, when=acq.sensing)
    length_px = _CLOUD_HEIGHT_M * math.tan(math.radians(min(zenith, 75.0))) / 20.0
    away = math.radians(azimuth + 180.0)  # shadows fall away from the sun; +y is south on the grid
    dy, dx = round(-length_px * math.cos(away)), round(length_px * math.sin(away))
    shadow20 = shift(a=cloud20 > 0, dy=dy, dx=dx) & (cloud20 == 0) & ~cirrus20
    doy = acq.sensing.timetuple().tm_yday
    season = math.cos(2 * math.pi * (doy - (196 if lat >= 0 else 15)) / 365.25)
    vegetation = np.zeros(shape, dtype=np.float32)
    for disc, peak, amplitude in ground.pivots:
        green = amplitude * max(0.0, math.cos(2 * math.pi * (doy - peak) / 365.25)) ** 0.7
        vegetation += disc * green
    aot = 80.0 + 150.0 * rng.uniform() + 60.0 * smooth_field(rng=rng, shape=shape, scale_px=300, octaves=2)
    wvp = 400.0 + 1500.0 * (1 + season) + 300.0 * smooth_field(rng=rng, shape=shape, scale_px=300, octaves=2)
    return SceneFields(
        opacity=opacity,
        cloud20=cloud20,
        cirrus20=cirrus20,
        shadow20=shadow20,
        aot=aot,
        wvp=wvp,
        vegetation=np.clip(vegetation, 0, 1),
        season=season,
        gain=float(1 + 0.015 * rng.standard_normal()),
        edge=edge,
    )


def pixel_centres(*, bounds: tuple[float, float, float, float], res: int) -> tuple[np.ndarray, np.ndarray]:
    """UTM x ``[1, W]`` and y ``[H, 1]`` of the pixel centres of ``bounds`` at ``res`` metres."""
    xmin, ymin, xmax, ymax = bounds
    x = xmin + (np.arange(round((xmax - xmin) / res)) + 0.5) * res
    y = ymax - (np.arange(round((ymax - ymin) / res)) + 0.5) * res
    return x[None, :], y[:, None]


def valid_mask(*, edge: SwathEdge | None, bounds: tuple[float, float, float, float], res: int) -> np.ndarray:
    """bool ``[H, W]``: pixel centres on the valid side of ``edge`` (all True without an edge)."""
    x, y = pixel_centres(bounds=bounds, res=res)
    if edge is None:
        return np.ones((y.shape[0], x.shape[1]), dtype=bool)
    return edge.valid(x, y)


def render_granule(
    *,
    ground: Ground,
    scene: SceneFields,
    window: tuple[int, int, int, int],
    bounds: tuple[float, float, float, float],
    boa_offset: bool,
) -> dict[str, np.ndarray]:
    """Rasters of one granule crop.

    Args:
        window: (row, col, height, width) of the crop on the group's 10 m grid (all even; h, w
            multiples of 6 so the 60 m grid fits).
        bounds: the crop in UTM metres (for the swath-edge test).
        boa_offset: add 1000 to reflectance DNs (baseline >= 04.00).

    Returns:
        asset key → array: reflectance bands, AOT, WVP uint16 ``[H_res, W_res]``; SCL uint8 ``[H/2, W/2]``;
        ``visual`` uint8 ``[3, H, W]``.
    """
    r, c, h, w = window
    win10 = (slice(r, r + h), slice(c, c + w))
    win20 = (slice(r // 2, (r + h) // 2), slice(c // 2, (c + w) // 2))
    veg = scene.vegetation[win10]
    R10 = (1 - veg) * ground.R[win10] + veg * VEGETATION_RNS[0]
    N10 = (1 - veg) * ground.N[win10] + veg * VEGETATION_RNS[1]
    veg20 = block_mean(a=veg, factor=2)
    S20 = (1 - veg20) * ground.S[win20] + veg20 * VEGETATION_RNS[2]
    water10, wvar10 = ground.water[win10], ground.water_var[win10]
    shadow10 = repeat_up(a=scene.shadow20[win20], factor=2).astype(np.float32)
    cirrus10 = repeat_up(a=scene.cirrus20[win20], factor=2).astype(np.float32)
    opacity10 = scene.opacity[win10]
    per_res: dict[int, dict[str, np.ndarray]] = {}
    for res, f in ((10, 1), (20, 2), (60, 6)):
        per_res[res] = {
            "R": block_mean(a=R10, factor=f),
            "N": block_mean(a=N10, factor=f),
            "S": S20 if f == 2 else (block_mean(a=S20, factor=3) if f == 6 else repeat_up(a=S20, factor=2)),
            "water": block_mean(a=water10, factor=f),
            "wvar": block_mean(a=wvar10, factor=f),
            "shadow": block_mean(a=shadow10, factor=f),
            "cirrus": block_mean(a=cirrus10, factor=f),
            "opacity": block_mean(a=opacity10, factor=f),
            "valid": valid_mask(edge=scene.edge, bounds=bounds, res=res),
        }
    out: dict[str, np.ndarray] = {}
    reflectance: dict[str, np.ndarray] = {}
    for band in REFLECTANCE_BANDS:
        p = per_res[band.resolution_m]
        land = (band.r * p["R"] + band.n * p["N"] + band.s * p["S"] + band.bias) * (
            1 + band.season * scene.season
        )
        refl = land * scene.gain * (1 - p["water"]) + p["water"] * (band.water * p["wvar"] - band.water_dip)
        refl = refl * (1 - 0.45 * p["shadow"])
        refl = refl * (1 - p["opacity"]) + p["opacity"] * band.cloud + p["cirrus"] * 0.08 * band.cloud
        reflectance[band.key] = refl
        dn = np.rint(refl) + (BOA_ADD_OFFSET_DN if boa_offset else 0)
        out[band.key] = np.where(p["valid"], np.clip(dn, 1, 65535), 0).astype(np.uint16)
    valid10 = per_res[10]["valid"]
    for key, values in (("AOT", scene.aot[win10]), ("WVP", scene.wvp[win10])):
        out[key] = np.where(valid10, np.clip(np.rint(values), 1, 65535), 0).astype(np.uint16)
    tci = [np.clip(np.rint(reflectance[b] * 255.0 / 2000.0), 1, 255) for b in ("B04", "B03", "B02")]
    out["visual"] = np.where(valid10[None], np.stack(tci), 0).astype(np.uint8)
    out["SCL"] = _scl(scene=scene, win20=win20, p=per_res[20])
    return out


def _scl(*, scene: SceneFields, win20: tuple[slice, slice], p: dict[str, np.ndarray]) -> np.ndarray:
    ndvi = (p["N"] - p["R"]) / np.maximum(p["N"] + p["R"], 1.0)
    scl = np.full(p["R"].shape, 5, dtype=np.uint8)  # not vegetated
    scl[ndvi > 0.4] = 4
    scl[p["water"] >= 0.5] = 6
    scl[scene.shadow20[win20]] = 3
    scl[scene.cirrus20[win20]] = 10
    cloud = scene.cloud20[win20]
    scl[cloud > 0] = cloud[cloud > 0]
    scl[~p["valid"]] = 0
    return scl
