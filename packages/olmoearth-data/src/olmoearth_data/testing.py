"""Fake corpora for tests: a real Zarr v3 corpus of synthetic pixels, written by the real writer.

In the style of TorchGeo's test-data scripts, everything but the pixels is what a build writes: the
store from :func:`~olmoearth_data.cube.layout.create_corpus`, whole shards from
:func:`~olmoearth_data.cube.writer.write_samples` (each shard's index fragment first, as ``build_shard``
does), consolidation and the merged index as ``build_corpus`` ends, then
:func:`~olmoearth_data.stats.compute_norm_stats`. Tiles are real grid tiles near real places in
several UTM zones (both hemispheres), periods each sample's real 12 monthly periods.

Per sample and modality (:func:`fake_sample_result`), in the storage dtype with its nodata:

- monthly (``sentinel2_l2a`` uint16 ``[12, C, H, W]`` per bandset, ``sentinel1`` float32 dB, ...):
  periods absent at random with a :class:`MissingReason` (mostly ``NO_ITEMS``, else ``ALL_NODATA`` or
  ``READ_FAILED``) and all nodata; about a third of the present ones with a nodata swath edge (every
  band nodata beyond a diagonal); 1–2 fake item ids per present period;
- static (``worldcover`` uint8 ``[1, C, H, W]``, ...): class maps, elevation, presence rasters; absent
  now and then (regional sources such as CDL outside CONUS: ``OUTSIDE_COVERAGE``);
- status ``DROPPED`` exactly when no observation has a present period (the build's rule), true for
  ``n_dropped`` rows; the rest ``COMPLETE``, the 2nd of them with only its first monthly modality, the
  3rd with none of its static maps.

Pixels: per sample a terrain and a vegetation field (160 m and 80 m scales) shared by all modalities;
land covers with sharp edges and a spectrum each, seasonal texture, per-period haze and clouds
(optical) or offsets (radar), noise. Seeded numpy, deterministic; tokens differ from each other and
between periods. They are not imagery: a model's loss on them does not fall as quickly as on the
twin's (real-texture) Sentinel-2, so "does training learn" checks belong on the twin's corpus.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from olmoearth_data.cube.layout import Chunking, consolidate, create_corpus, nodata_fill
from olmoearth_data.cube.writer import write_samples
from olmoearth_data.grid import tile_for_lonlat
from olmoearth_data.index import fragments_dir, write_index, write_shard_fragment
from olmoearth_data.missing import MissingReason, SampleStatus
from olmoearth_data.modalities import BandSet, ModalitySpec, modality_set
from olmoearth_data.results import ModalityResult, SampleResult
from olmoearth_data.samples import Sample
from olmoearth_data.sources import SOURCES
from olmoearth_data.stats import compute_norm_stats

#: The fixture's modality set: two monthly observations (uint16 and float32/NaN) and a static map.
DEFAULT_FAKE_MODALITIES = "sentinel2_l2a,sentinel1,worldcover"
#: (lon, lat) of real places the fake tiles are taken from, in distinct UTM zones.
FAKE_PLACES: tuple[tuple[float, float], ...] = (
    (-123.11, 49.26), (-122.28, 37.81), (2.35, 48.86), (36.82, -1.29), (151.21, -33.87),
    (139.69, 35.69), (-47.88, -15.79), (77.59, 12.97), (18.42, -33.92), (-99.13, 19.43),
)  # fmt: skip
#: Probability that a period of a monthly modality is absent (others: :data:`_P_ABSENT_OTHER`).
_P_ABSENT = {"sentinel2_l2a": 0.25, "sentinel1": 0.2, "landsat": 0.4, "landsat_l2": 0.4}
_P_ABSENT_OTHER = 0.3
_P_STATIC_ABSENT = 0.15
_P_SWATH = 0.35
#: Land covers per tile, each with its own spectrum.
_N_COVER = 6
_ABSENT_REASONS = (MissingReason.NO_ITEMS, MissingReason.ALL_NODATA, MissingReason.READ_FAILED)
_CLASS_CODES = {
    "worldcover": (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100),
    "cdl": (1, 5, 24, 36, 61, 111, 121, 141, 176, 190),
}
#: CONUS (west, south, east, north): where a regional source (CDL) has data.
_CONUS = (-125.0, 24.0, -66.0, 50.0)
#: Salt of the random stream that picks the dropped rows.
_DROP_STREAM = 99_991


def fake_samples(*, n_samples: int, seed: int) -> list[Sample]:
    """``n_samples`` real grid tiles near :data:`FAKE_PLACES` (cycled, a seeded offset of up to ±5 km
    per visit) with centre dates in 2019–2023; deterministic in ``seed``."""
    rng = np.random.default_rng([seed, 0])
    out = []
    for i in range(n_samples):
        lon, lat = FAKE_PLACES[i % len(FAKE_PLACES)]
        dlon, dlat = rng.uniform(-0.05, 0.05, 2)
        centre = dt.date(2019, 1, 1) + dt.timedelta(days=int(rng.integers(0, 5 * 365)))
        out.append(Sample(tile_for_lonlat(lon=lon + dlon, lat=lat + dlat), centre))
    return out


def _landscape(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Control points of two ~N(0, 1) ground components (terrain, vegetation) at two scales: float32
    ``[2, 17, 17]`` (160 m apart on the 10 m grid) and ``[2, 33, 33]`` (80 m); shared by every modality."""
    return rng.standard_normal((2, 17, 17), np.float32), rng.standard_normal((2, 33, 33), np.float32)


def _sky(t: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What changes between periods, shared by a modality's bandsets: season ``[T]`` in [−1, 1], cloud
    control points ``[T, 9, 9]`` (some periods clear, some cloudy) and haze ``[T]`` in [0, 1]."""
    season = np.sin(np.arange(t) * np.pi / 6 + rng.uniform(0, 2 * np.pi)).astype(np.float32)
    clouds = rng.standard_normal((t, 9, 9), np.float32) * rng.uniform(0, 1.3, (t, 1, 1)).astype(np.float32)
    return season, clouds, rng.uniform(0, 1, t).astype(np.float32)


def _resample(ctrl: np.ndarray, n: int) -> np.ndarray:
    """Bilinear interpolation of ``[..., k, k]`` control points onto ``[..., n, n]`` (float32)."""
    k = ctrl.shape[-1]
    pos = np.linspace(0, k - 1, n, dtype=np.float32)
    i0 = np.minimum(pos.astype(int), k - 2)
    f = pos - i0
    rows = ctrl[..., i0, :] * (1 - f)[:, None] + ctrl[..., i0 + 1, :] * f[:, None]
    return rows[..., i0] * (1 - f) + rows[..., i0 + 1] * f


def _pixels(
    spec: ModalitySpec,
    bs: BandSet,
    land: tuple[np.ndarray, np.ndarray],
    sky: tuple[np.ndarray, np.ndarray, np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray:
    """Valid synthetic values ``[T, C, n, n]`` of one bandset in the modality's storage dtype.

    Terrain splits the tile into :data:`_N_COVER` land covers with sharp edges, each with a brightness
    shared by the bands and a smaller part of its own per band; vegetation adds texture that swells
    and fades with the season; each period has its own haze and clouds (optical) or offset (radar),
    plus noise. Tokens differ from each other and between periods as in imagery.
    """
    t, c, n = spec.num_timesteps, len(bs.bands), bs.pixels_per_tile
    shape = (t, c, n, n)
    terrain, vegetation = _resample(land[0], n) + 0.5 * _resample(land[1], n)  # [n, n] each
    cover = np.clip(((terrain + 2) / 4 * _N_COVER).astype(int), 0, _N_COVER - 1)  # [n, n]
    season, clouds, haze = (a[:t].reshape(t, 1, *a.shape[1:]) for a in sky)  # [T, 1(, k, k)]
    texture = vegetation * (1 + 0.5 * season[..., None, None])  # [T, 1, n, n]
    spectra = 0.7 * rng.uniform(0, 1, (_N_COVER, 1)) + 0.3 * rng.uniform(0, 1, (_N_COVER, c))
    level = spectra.astype(np.float32)[cover].transpose(2, 0, 1)  # [C, n, n] in [0, 1]
    if spec.name in _CLASS_CODES:  # land-cover class codes
        codes = np.asarray(_CLASS_CODES[spec.name])
        x = codes[np.random.default_rng(int(rng.integers(2**31))).permutation(len(codes))[cover % len(codes)]]
    elif spec.dtype == "float32":  # backscatter in dB, about −25…−3; later bands (VH) ~6 dB below VV
        x = -20 + 12 * level + 2 * texture + season[..., None, None] + rng.normal(0, 1.0, shape)  # speckle
        x -= 6 * np.arange(c, dtype=np.float32)[:, None, None]
    elif spec.dtype == "uint16":  # reflectance × 10000 (or Landsat scaled integers); clouds 6500+
        x = 200 + 4000 * level + 500 * texture + 800 * haze[..., None, None] + rng.integers(0, 60, shape)
        cloud = _resample(clouds, n)  # [T, 1, n, n]
        x = np.clip(np.where(cloud > 1.0, 5000 + 1500 * cloud, x), 1, 12000)
    elif spec.dtype == "int16":  # elevation in metres
        x = 400 + 120 * terrain + rng.integers(-3, 4, shape)
    elif spec.nodata is None:  # presence rasters (OSM): sparse, and only a few categories
        x = (texture + rng.normal(0, 0.3, shape)) > 1.8
        x[:, 5:] = False
    elif spec.name == "worldcereal":  # 0 (not this crop) or 100
        x = np.where(level > 0.7, 100, 0)
    else:  # canopy height in metres
        x = np.clip(12 + 8 * vegetation, 0, 60)
    return np.broadcast_to(x, shape).astype(spec.dtype)


def _item_ids(spec: ModalitySpec, sample: Sample, t: int, rng: np.random.Generator) -> list[str]:
    source = SOURCES.get(spec.name)
    collection = source.collection if source is not None else spec.name
    day = sample.periods[t].start if spec.is_multitemporal else sample.centre
    return [f"fake-{collection}_{day:%Y%m%d}_{sample.tile.id}_{k}" for k in range(int(rng.integers(1, 3)))]


def _in_coverage(spec: ModalitySpec, sample: Sample) -> bool:
    source = SOURCES.get(spec.name)
    if source is None or not source.regional:
        return True
    lon, lat = sample.tile.centre_lonlat
    west, south, east, north = _CONUS
    return west <= lon <= east and south <= lat <= north


def _modality(
    spec: ModalitySpec,
    sample: Sample,
    land: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    *,
    absent: bool,
) -> ModalityResult:
    """One modality of one sample; ``absent``: every period missing (with a reason)."""
    t = spec.num_timesteps
    if spec.is_multitemporal:
        present = (rng.random(t) >= _P_ABSENT.get(spec.name, _P_ABSENT_OTHER)) & (not absent)
    else:
        present = np.array([not absent and rng.random() >= _P_STATIC_ABSENT and _in_coverage(spec, sample)])
    reason = np.where(present, MissingReason.PRESENT, rng.choice(_ABSENT_REASONS, t, p=(0.7, 0.2, 0.1)))
    if not spec.is_multitemporal and not _in_coverage(spec, sample):
        reason[:] = MissingReason.OUTSIDE_COVERAGE
    fill = nodata_fill(spec)
    sky = _sky(t, rng)
    swath = (rng.random(t) < _P_SWATH) & present & (spec.nodata is not None)
    arrays = {}
    for bs in spec.bandsets:
        a = _pixels(spec, bs, land, sky, rng)
        a[~present] = fill
        n = bs.pixels_per_tile
        yy, xx = np.mgrid[0:n, 0:n]
        for k in np.flatnonzero(swath):  # a swath edge: every band nodata beyond a diagonal line
            a[k][:, yy + xx < int(rng.integers(n // 4, n))] = fill
        arrays[bs.name] = a
    ids = [_item_ids(spec, sample, k, rng) if present[k] else [] for k in range(t)]
    extra = {"cdl_year": sample.centre.year} if spec.name == "cdl" and present.any() else {}
    return ModalityResult(arrays, present, reason.astype(np.uint8), item_ids=ids, extra=extra)


def fake_sample_result(
    *,
    index: int,
    sample: Sample,
    specs: Sequence[ModalitySpec],
    seed: int,
    drop: bool = False,
    first_monthly_only: bool = False,
    no_static: bool = False,
) -> SampleResult:
    """The synthetic :class:`SampleResult` of corpus row ``index`` (its own seeded stream of ``seed``).

    Periods go missing at random; on top of that, ``drop``: no observation modality has data (the
    sample is ``DROPPED``), ``first_monthly_only``: every monthly modality but the first is absent
    (``NO_ITEMS``...), ``no_static``: every static map is absent. Without ``drop`` the sample is always
    ``COMPLETE`` (if chance left no observation, one period of the first is made present).
    """
    rng = np.random.default_rng([seed, 1, index])
    land = _landscape(rng)
    monthly = [s for s in specs if s.is_multitemporal]
    results: dict[str, ModalityResult] = {}
    for spec in specs:
        absent = drop and not spec.is_map
        absent |= first_monthly_only and spec.is_multitemporal and spec is not monthly[0]
        absent |= no_static and not spec.is_multitemporal
        results[spec.name] = _modality(spec, sample, land, rng, absent=absent)
    observations = [s for s in specs if not s.is_map]
    if not drop and observations and not any(results[s.name].any_present for s in observations):
        first = observations[0]  # keep the row complete: one period of its first observation
        m, k = results[first.name], int(rng.integers(0, first.num_timesteps))
        for bs in first.bandsets:
            m.arrays[bs.name][k] = _pixels(first, bs, land, _sky(first.num_timesteps, rng), rng)[k]
        m.present[k], m.reason[k] = True, MissingReason.PRESENT
        m.item_ids[k] = _item_ids(first, sample, k, rng)
    # The build's rule (olmoearth_data.materialise.sample): dropped when no observation has data.
    if any(results[s.name].any_present for s in observations):
        return SampleResult(index, SampleStatus.COMPLETE, "", results)
    return SampleResult(
        index, SampleStatus.DROPPED, "no observation (S2/S1/Landsat) data in any period", results
    )


def write_fake_corpus(
    *,
    path: Path | str,
    n_samples: int = 7,
    modalities: str | Sequence[str] = DEFAULT_FAKE_MODALITIES,
    samples_per_shard: int = 2,
    seed: int = 0,
    n_dropped: int = 1,
    chunking: Chunking | None = None,
    norm_stats: bool = True,
) -> Path:
    """Write a fake corpus at ``path`` (refuses an existing one) and return ``path``.

    Args:
        path: the ``.zarr`` store to create; the index goes beside it (``<stem>.index.parquet`` and
            the per-shard fragments ``<stem>.index/``), as for a build.
        n_samples: corpus rows; ``n_samples − n_dropped`` end ``COMPLETE`` (all ``DROPPED`` if the
            modality set has no observation, the build's rule).
        modalities: a set name or comma-separated modality names (:func:`modality_set`).
        samples_per_shard: shard size in samples (the last shard may be partial).
        seed: everything (tiles, dates, which rows drop, pixels) is a function of it.
        n_dropped: rows whose observations are all missing, hence ``DROPPED`` (seeded choice).
        chunking: inner chunks of the data arrays (default: the build's).
        norm_stats: compute and store the per-band normalisation stats (the loader needs them).

    Layout (docs/corpus-schema.md): per modality ``<m>/<bandset>/data`` ``[sample, period, band, y, x]``
    (static: no ``period``) in the storage dtype (uint16 S2 with nodata 0, float32 S1 dB with NaN,
    uint8 WorldCover with 0, ...), ``<m>/present`` bool and ``<m>/reason`` uint8 ``[sample(, period)]``,
    root ``status`` int8 / ``status_reason`` str ``[sample]`` and the per-sample coordinates
    (``tile_id``, ``epsg``, ``period_start``/``period_end`` ``[sample, 12]`` ...). Root attributes
    ``olmoearth.fake_corpus`` record the arguments (a build records ``build_config`` there).
    """
    specs = modality_set(modalities if isinstance(modalities, str) else tuple(modalities))
    if not 0 <= n_dropped <= n_samples:
        raise ValueError(f"n_dropped must be in [0, n_samples={n_samples}], got {n_dropped}")
    samples = fake_samples(n_samples=n_samples, seed=seed)
    dropped = set(
        np.random.default_rng([seed, _DROP_STREAM]).choice(n_samples, n_dropped, replace=False).tolist()
    )
    complete = [r for r in range(n_samples) if r not in dropped]
    # As build_corpus: index fragments of an earlier corpus at this path would lend it their item ids.
    if not Path(path).exists():
        shutil.rmtree(fragments_dir(path), ignore_errors=True)
    params = {
        "n_samples": n_samples,
        "modalities": [s.name for s in specs],
        "seed": seed,
        "n_dropped": n_dropped,
    }
    sources = {s.name: SOURCES[s.name].to_dict() for s in specs if s.name in SOURCES}
    layout = create_corpus(path, samples=samples, specs=specs, samples_per_shard=samples_per_shard,
                           chunking=chunking, attrs={"fake_corpus": params, "sources": sources})  # fmt: skip
    for shard in range(layout.n_shards):
        start, stop = layout.shard_range(shard)
        results = [
            fake_sample_result(index=i, sample=samples[i], specs=specs, seed=seed, drop=i in dropped,
                               first_monthly_only=i in complete[1:2], no_static=i in complete[2:3])
            for i in range(start, stop)
        ]  # fmt: skip
        # The order of build_shard: the fragment first, then the shard (whose status is written last).
        write_shard_fragment(corpus=path, shard=shard, results=results)
        write_samples(path, layout=layout, specs=specs, results=results)
    consolidate(path)
    write_index(corpus=path)
    if norm_stats:
        compute_norm_stats(path)
    return Path(path)
