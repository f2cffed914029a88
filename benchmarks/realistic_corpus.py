"""Realistic pixels for every modality of the ``default`` set, for the chunking and loader benchmarks.

Sentinel-2 is real: the demo corpus's composites (``make demo``: real Sentinel-2 pixels served by the
twin; ``data/demo/default.zarr``, or the older S2-only ``data/demo/s2.zarr``), rotated by 90° steps
to give more distinct samples than the demo has tiles. The other modalities are derived from those
pixels so they share the tile's structure (fields, water, towns) and have the
value ranges, dtypes, sparsity and missing patterns of the real products — which is what compression
ratios and read costs depend on:

* Sentinel-1: float32 dB, VV ≈ −12 dB / VH ≈ −19 dB by land class, with per-period speckle (≈ 2 dB);
  one absent period, a NaN swath edge in some periods.
* Landsat C2 L2: the S2 reflectances re-encoded as L2 scaled integers at 20 m, B10 a smooth surface
  temperature field; ~60 % of the S2 periods.
* WorldCover classes from the S2 NDVI; NASADEM-like int16 terrain; canopy height on tree pixels; CDL
  on half the samples (the rest outside coverage); WorldCereal 0/100 crop layers; the OSM raster at
  2.5 m: buildings in built-up areas, roads, a river, parking — mostly zeros, as real OSM tiles are.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import zarr

from olmoearth_data.cube.layout import create_corpus, empty_arrays
from olmoearth_data.cube.writer import write_samples
from olmoearth_data.missing import MissingReason, SampleStatus
from olmoearth_data.modalities import OSM_RASTER_CATEGORIES, ModalitySpec, modality_set
from olmoearth_data.results import ModalityResult, SampleResult
from olmoearth_data.samples import read_sample_table
from olmoearth_data.stats import compute_norm_stats

DEMO = Path("data/demo")


def smooth(rng: np.random.Generator, n: int, scale_px: float) -> np.ndarray:
    """float32 ``[n, n]`` zero-mean unit-std Gaussian random field with correlation length ``scale_px``."""
    fy, fx = np.fft.fftfreq(n)[:, None], np.fft.rfftfreq(n)[None, :]
    kernel = np.exp(-2 * (np.pi * scale_px) ** 2 * (fx**2 + fy**2))
    field = np.fft.irfft2(np.fft.rfft2(rng.standard_normal((n, n))) * kernel, s=(n, n))
    return ((field - field.mean()) / (field.std() + 1e-12)).astype(np.float32)


def real_s2(demo: Path = DEMO) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:
    """The demo corpus's S2 (complete samples): per sample ``{bandset: uint16 [12, C, H, W]}``, present."""
    found = [demo / name for name in ("default.zarr", "s2.zarr") if (demo / name).exists()]
    if not found:
        raise FileNotFoundError(f"no demo corpus under {demo}: run `make demo` first (real S2 pixels)")
    g = zarr.open_group(str(found[0]), mode="r")
    rows = np.flatnonzero(np.asarray(g["status"][:]) == SampleStatus.COMPLETE)
    rows = rows[np.asarray(g["sentinel2_l2a/present"][:])[rows].any(axis=1)]
    if rows.size == 0:
        raise ValueError(f"{found[0]} has no complete sample with Sentinel-2 data")
    arrays = {name: np.asarray(g[f"sentinel2_l2a/{name}/data"][:])[rows] for name in ("10m", "20m", "40m")}
    present = np.asarray(g["sentinel2_l2a/present"][:])[rows]
    return [{k: v[i] for k, v in arrays.items()} for i in range(len(rows))], present


def _classes(s2: dict[str, np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """WorldCover-like class map uint8 ``[256, 256]`` from the median NDVI, and that NDVI."""
    b = s2["10m"].astype(np.float32)
    valid = b[:, 3] > 0
    ndvi = np.where(valid, (b[:, 3] - b[:, 2]) / np.maximum(b[:, 3] + b[:, 2], 1), np.nan)
    ndvi = np.nan_to_num(np.nanmedian(ndvi, axis=0), nan=0.3)
    # thresholds at NDVI quantiles: the twin's pixels are bright everywhere, so absolute NDVI
    # thresholds would give one class; quantiles keep the tile's real spatial structure
    q_water, q_built, q_tree = np.quantile(ndvi, [0.05, 0.25, 0.6])
    split = smooth(rng, 256, 6) > 0
    cls = np.full(ndvi.shape, 10, np.uint8)  # tree cover
    cls[ndvi < q_tree] = np.where(split, 30, 40)[ndvi < q_tree]  # grassland / cropland
    cls[ndvi < q_built] = np.where(split, 50, 60)[ndvi < q_built]  # built-up / bare
    cls[ndvi < q_water] = 80  # water
    return cls, ndvi


def _osm(cls: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 ``[30, 1024, 1024]`` 0/1 OSM raster at 2.5 m."""
    out = np.zeros((len(OSM_RASTER_CATEGORIES), 1024, 1024), np.uint8)
    band = {name: i for i, name in enumerate(OSM_RASTER_CATEGORIES)}
    built = np.argwhere(cls == 50) * 4
    for y, x in built[rng.choice(len(built), min(len(built), 400), replace=False)] if len(built) else []:
        h, w = rng.integers(4, 16, 2)
        out[band["building"], y : y + h, x : x + w] = 1
    for _ in range(int(rng.integers(3, 9))):  # roads: straight lines, 2-3 px (5-7.5 m) wide
        (y0, x0), (y1, x1) = rng.integers(0, 1024, (2, 2))
        t = np.linspace(0, 1, 3000)
        ys, xs = (y0 + t * (y1 - y0)).astype(int), (x0 + t * (x1 - x0)).astype(int)
        for d in range(int(rng.integers(2, 4))):
            out[band["highway"], np.clip(ys + d, 0, 1023), xs] = 1
    water = np.kron(cls == 80, np.ones((4, 4), bool))
    out[band["river"]][water] = 1
    for y, x in rng.integers(0, 1000, (int(rng.integers(0, 6)), 2)):
        out[band["parking"], y : y + 20, x : x + 30] = 1
    for y, x in rng.integers(0, 1024, (int(rng.integers(0, 10)), 2)):
        out[band["power_tower"], y, x] = 1
    return out


def realistic_sample(
    s2: dict[str, np.ndarray], s2_present: np.ndarray, *, specs: tuple[ModalitySpec, ...], seed: int
) -> dict[str, ModalityResult]:
    """Every modality of ``specs`` for one tile whose S2 is ``s2`` (``{bandset: [12, C, H, W]}``)."""
    rng = np.random.default_rng(seed)
    cls, _ = _classes(s2, rng)
    out: dict[str, ModalityResult] = {}
    for spec in specs:
        arrays = empty_arrays(spec, n_periods=spec.num_timesteps)
        present = np.zeros(spec.num_timesteps, bool)
        if spec.name == "sentinel2_l2a":
            arrays, present = {k: v.copy() for k, v in s2.items()}, s2_present.copy()
        elif spec.name == "sentinel1":
            base = np.select([cls == 80, cls == 50, cls == 10], [-20.0, -6.0, -9.0], -12.0) + smooth(
                rng, 256, 8
            )
            present[:] = True
            present[rng.integers(12)] = False
            for t in np.flatnonzero(present):
                speckle = 10 * np.log10(rng.gamma(4.4, 1 / 4.4, (2, 256, 256)))
                a = np.stack([base, base - 7.0]) + speckle + rng.normal(0, 0.5)
                if rng.random() < 0.3:  # a swath edge
                    a[:, :, int(rng.integers(64, 256)) :] = np.nan
                arrays["10m"][t] = a.astype(np.float32)
        elif spec.name == "landsat_l2":
            b10, b20, b40 = (s2[k].astype(np.float32) for k in ("10m", "20m", "40m"))
            down = b10.reshape(12, 4, 128, 2, 128, 2).mean(axis=(3, 5))
            coastal = b40[:, :1].repeat(2, axis=-2).repeat(2, axis=-1)
            refl = np.concatenate([coastal, down[:, :3], b20[:, 3:6]], axis=1)  # B1..B7
            dn = np.clip((refl / 1e4 + 0.2) / 2.75e-5, 1, 65535)
            temp = (295 + 4 * smooth(rng, 128, 10) - 149) / 0.00341802
            st = np.clip(temp[None, None] + rng.normal(0, 300, (12, 1, 1, 1)), 1, 65535)
            a = np.concatenate([dn, st], axis=1).astype(np.uint16)
            a[(b20[:, :1] == 0).repeat(8, axis=1)] = 0
            present = s2_present & (rng.random(12) < 0.6)
            a[~present] = 0
            arrays["20m"] = a
        elif spec.name == "worldcover":
            arrays["10m"][0, 0], present[0] = cls, True
        elif spec.name == "srtm":
            elev = 200 + 150 * smooth(rng, 256, 40) + 20 * smooth(rng, 256, 6)
            arrays["10m"][0, 0], present[0] = elev.astype(np.int16), True
        elif spec.name == "wri_canopy_height_map":
            h = np.clip(12 + 6 * smooth(rng, 256, 3), 1, 40)
            arrays["10m"][0, 0], present[0] = np.where(cls == 10, h, 0).astype(np.uint8), True
        elif spec.name == "cdl" and seed % 2 == 0:  # half the tiles are in CONUS
            parcels = np.digitize(smooth(rng, 256, 10), [-0.8, 0, 0.8])
            crop = np.array([1, 5, 24, 36], np.uint8)[parcels]
            other = np.select([cls == 10, cls == 50, cls == 80], [141, 122, 111], 176).astype(np.uint8)
            arrays["10m"][0, 0], present[0] = np.where(cls == 40, crop, other), True
        elif spec.name == "worldcereal" and seed % 4 != 3:
            a = np.zeros((8, 256, 256), np.uint8)
            a[0] = np.where(cls == 40, 100, 0)
            a[2] = np.where((cls == 40) & (smooth(rng, 256, 10) > 0.3), 100, 0)
            arrays["10m"][0], present[0] = a, True
        elif spec.name == "openstreetmap_raster":
            arrays["2_5m"][0], present[0] = _osm(cls, rng), True
        reason = np.where(present, MissingReason.PRESENT, MissingReason.OUTSIDE_COVERAGE).astype(np.uint8)
        out[spec.name] = ModalityResult(arrays, present, reason)
    return out


def realistic_results(
    *, n_samples: int, specs: tuple[ModalitySpec, ...], demo: Path = DEMO
) -> list[SampleResult]:
    """``n_samples`` complete rows: demo tile ``i % n`` rotated by ``90° × (i // n)`` (``n`` demo tiles)."""
    s2s, present = real_s2(demo)
    results = []
    for i in range(n_samples):
        k = (i // len(s2s)) % 4
        s2 = {
            name: np.ascontiguousarray(np.rot90(a, k, axes=(-2, -1))) for name, a in s2s[i % len(s2s)].items()
        }
        mods = realistic_sample(s2, present[i % len(s2s)], specs=specs, seed=i)
        results.append(SampleResult(index=i, status=SampleStatus.COMPLETE, status_reason="", modalities=mods))
    return results


def build_realistic_corpus(
    path: Path,
    *,
    n_samples: int,
    samples_per_shard: int,
    modalities: str = "default",
    demo: Path = DEMO,
    **layout,
) -> Path:
    """Write a corpus of ``n_samples`` realistic rows with the real layout, writer and norm stats."""
    specs = modality_set(modalities)
    base = read_sample_table(demo / "samples.parquet")
    samples = [
        dataclasses.replace(s, tile=dataclasses.replace(s.tile, col=s.tile.col + 1000 * (i // len(base))))
        for i, s in ((i, base[i % len(base)]) for i in range(n_samples))
    ]
    lay = create_corpus(path, samples=samples, specs=specs, samples_per_shard=samples_per_shard, **layout)
    results = realistic_results(n_samples=n_samples, specs=specs, demo=demo)
    for shard in range(lay.n_shards):
        start, stop = lay.shard_range(shard)
        write_samples(path, layout=lay, specs=specs, results=results[start:stop])
    compute_norm_stats(path)
    return path


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Build a realistic corpus from the demo's real S2 pixels")
    parser.add_argument("out", type=Path, help="the corpus to create (must not exist)")
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--samples-per-shard", type=int, default=4)
    parser.add_argument("--modalities", default="default")
    args = parser.parse_args()
    build_realistic_corpus(
        args.out, n_samples=args.samples, samples_per_shard=args.samples_per_shard, modalities=args.modalities
    )
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
