"""Inner-chunk shapes vs the loader's real access pattern: random-crop read speed, bytes, write cost.

For each bandset group of the ``default`` modality set (S2 10/20/40 m, S1, Landsat L2, static maps,
the 2.5 m OSM raster) the same realistic pixels (``realistic_corpus.py``: real Sentinel-2 from the
demo corpus, the rest derived from it) are written into one store per alternative inner chunk shape —
``[1 sample, 1 period, all bands, s × s]`` for several sides ``s``, and ``[1, all 12 periods, …]`` —
always sharded as the corpus is (``samples_per_shard`` along the sample axis, the whole tile and
every period in the shard). Then every store reads the *same* crops, drawn with the training
sampler (``plan_batch``/``plan_crop`` over the default set: patch U{1..8}, crop U{1..12} tokens,
timesteps from the 2,250-token budget, each sample's present periods), both with the loader's
direct shard reader and with zarr-python (what xarray users get). Alternatives are interleaved
round by round, so a busy shared machine slows them alike.

Recorded per alternative: crops/s (direct and zarr), chunks, bytes read from disk (chunks + index)
and bytes decoded per crop vs the bytes the crop uses, stored bytes and compression ratio
(blosc-zstd, bit shuffle), write CPU seconds per sample. Writes benchmarks/results/chunking_cpu.json.
Needs the demo corpus (`make demo`). Run: `.venv/bin/python benchmarks/bench_chunking.py`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zarr

from olmoearth_data.cube.layout import DATA_COMPRESSOR, Chunking, nodata_fill
from olmoearth_data.modalities import BandSet, ModalitySpec, modality_set
from olmoearth_model.data.sampling import batch_rng, epoch_order, plan_batch, plan_crop
from olmoearth_model.data.shards import ShardedArray

sys.path.insert(0, str(Path(__file__).parent))
from provenance import cpu_name, git_commit
from realistic_corpus import realistic_results

DEFAULT_OUT = Path(__file__).parent / "results" / "chunking_cpu.json"

#: group → (chunk sides in stored px with one period per chunk, sides with all 12 periods per chunk)
ALTERNATIVES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "sentinel2_l2a/10m": ((32, 64, 128, 256), (16, 32, 64, 256)),
    "sentinel2_l2a/20m": ((16, 32, 64, 128), (8, 16, 32, 64, 128)),
    "sentinel2_l2a/40m": ((16, 32, 64), (8, 16, 32, 64)),
    "sentinel1/10m": ((32, 64, 128, 256), (16, 32, 64)),
    "landsat_l2/20m": ((16, 32, 64, 128), (8, 16, 32, 64)),
    "worldcover/10m": ((32, 64, 128, 256), ()),
    "srtm/10m": ((32, 64, 128, 256), ()),
    "worldcereal/10m": ((32, 64, 128, 256), ()),
    "openstreetmap_raster/2_5m": ((16, 32, 64, 128, 256, 512, 1024), ()),
}
#: Groups not measured, read like a measured one (same dtype and band count): cdl and canopy height.
STAND_INS = {"cdl/10m": "worldcover/10m", "wri_canopy_height_map/10m": "worldcover/10m"}


@dataclass
class Alternative:
    """One store: a group written with one inner chunk shape, and what reading it cost."""

    group: str
    spec: ModalitySpec
    bs: BandSet
    side: int
    periods_per_chunk: int
    path: Path
    stored_bytes: int = 0
    write_cpu_s: float = 0.0
    times: dict[str, list[float]] = field(default_factory=lambda: {"direct": [], "zarr": []})
    crops: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    used_bytes: int = 0

    @property
    def name(self) -> str:
        t = "12 periods" if self.periods_per_chunk == 12 else "1 period"
        return f"{self.group} [{t}, {self.side}×{self.side}]"


def _crop_windows(results: list, *, specs: tuple[ModalitySpec, ...], n_batches: int, batch: int, seed: int):
    """The training sampler's crops: ``(row, Crop)`` for ``n_batches`` batches of ``batch`` samples."""
    rows = np.arange(len(results))
    out = []
    for b in range(n_batches):
        epoch, local = divmod(b * batch, len(rows))
        order = epoch_order(indices=rows, seed=seed, epoch=epoch)
        plan = plan_batch(rng=batch_rng(seed=seed, epoch=epoch, batch=b), specs=specs)
        for pos in range(batch):
            row = int(order[(local + pos) % len(rows)])
            present = np.zeros(12, bool)
            for s in specs:
                if s.is_multitemporal:
                    present |= results[row].modalities[s.name].present
            srng = np.random.default_rng([seed, epoch, b, pos + 1])
            out.append((row, plan_crop(rng=srng, plan=plan, present_any=present)))
    return out


def _box(
    alt: Alternative, row: int, crop, present: np.ndarray
) -> tuple[list[tuple[int, int]], np.ndarray] | None:
    """The stored-pixel box the loader reads for ``crop`` and the present periods in it (None: nothing)."""
    k = alt.bs.scale_to_base
    if k >= 1:
        k = int(k)
        ys, ye = crop.y0 // k, (crop.y0 + crop.size - 1) // k + 1
        xs, xe = crop.x0 // k, (crop.x0 + crop.size - 1) // k + 1
    else:
        f = round(1 / k)
        ys, ye, xs, xe = crop.y0 * f, (crop.y0 + crop.size) * f, crop.x0 * f, (crop.x0 + crop.size) * f
    c = len(alt.bs.bands)
    if not alt.spec.is_multitemporal:
        return ([(row, row + 1), (0, c), (ys, ye), (xs, xe)], np.zeros(1, int)) if present[0] else None
    periods = np.array([p for p in crop.periods if p < 12 and present[p]], dtype=int)
    if periods.size == 0:
        return None
    lo, hi = int(periods.min()), int(periods.max()) + 1
    return [(row, row + 1), (lo, hi), (0, c), (ys, ye), (xs, xe)], periods - lo


def _write(alt: Alternative, results: list, samples_per_shard: int) -> None:
    """Create the store and write it one whole shard at a time, as ``cube/writer.py`` does."""
    spec, bs, n = alt.spec, alt.bs, len(results)
    px, c = bs.pixels_per_tile, len(bs.bands)
    time_dims = (12,) if spec.is_multitemporal else ()
    chunks = (1, *((alt.periods_per_chunk,) if time_dims else ()), c, alt.side, alt.side)
    arr = zarr.create_array(
        str(alt.path), shape=(n, *time_dims, c, px, px), dtype=spec.dtype, chunks=chunks,
        shards=(samples_per_shard, *time_dims, c, px, px), compressors=(DATA_COMPRESSOR,),
        fill_value=nodata_fill(spec),
    )  # fmt: skip
    cpu = time.process_time()
    for start in range(0, n, samples_per_shard):
        stop = min(n, start + samples_per_shard)
        block = np.stack([r.modalities[spec.name].arrays[bs.name] for r in results[start:stop]])
        arr[start:stop] = block if time_dims else block[:, 0]
    alt.write_cpu_s = time.process_time() - cpu
    alt.stored_bytes = sum(f.stat().st_size for f in alt.path.rglob("*") if f.is_file())


def _read(alt: Alternative, crops: list, results: list, *, reader: str) -> float:
    """Seconds to read ``crops`` (loader-style: box, then the present periods); counts bytes (direct)."""
    arr = zarr.open_array(str(alt.path), mode="r")
    direct = ShardedArray.from_zarr(arr) if reader == "direct" else None
    used = 0
    start = time.perf_counter()
    for row, crop in crops:
        got = _box(alt, row, crop, results[row].modalities[alt.spec.name].present)
        if got is None:
            continue
        box, keep = got
        if direct is not None:
            values = direct.read(box)
        else:
            values = arr[tuple(slice(a, b) for a, b in box)]
        if alt.spec.is_multitemporal:
            values = values[:, keep]
        used += values.nbytes
    elapsed = time.perf_counter() - start
    if direct is not None:
        alt.crops += len(crops)
        alt.used_bytes += used
        for key, value in vars(direct.counters).items():
            alt.counters[key] = alt.counters.get(key, 0) + value
    return elapsed


def _reference(alts: list[Alternative], alt: Alternative) -> Alternative:
    """The group's current layout: one period, the whole tile per chunk."""
    return next(a for a in alts if a.group == alt.group and a.periods_per_chunk == 1
                and a.side == a.bs.pixels_per_tile)  # fmt: skip


def _relative(alt: Alternative, ref: Alternative, reader: str) -> float:
    ratios = [a / b for a, b in zip(alt.times[reader], ref.times[reader]) if b > 0]
    return round(float(np.median(ratios)), 3)


def _per_sample(summaries: list[dict], chunking: Chunking, specs: tuple[ModalitySpec, ...]) -> dict:
    """Read ms per training sample (one crop of every bandset of the default set) under ``chunking``."""
    rows = {(r["group"], tuple(r["chunk"])): r for r in summaries}
    out = {"direct_ms": 0.0, "zarr_ms": 0.0, "disk_bytes": 0, "write_cpu_s": 0.0, "groups": {}}
    for spec in specs:
        for bs in spec.bandsets:
            group = f"{spec.name}/{bs.name}"
            row = rows.get((STAND_INS.get(group, group), chunking.chunks(spec, bs)))
            if row is None:
                raise KeyError(f"{group} with chunks {chunking.chunks(spec, bs)} was not measured")
            out["groups"][group] = "×".join(map(str, row["chunk"]))
            out["direct_ms"] += 1e3 / row["direct_crops_per_s"]
            out["zarr_ms"] += 1e3 / row["zarr_crops_per_s"]
            out["disk_bytes"] += row["disk_bytes_per_crop"]
            out["write_cpu_s"] += row["write_cpu_s_per_sample"]
    out["direct_samples_per_s"] = round(1e3 / out["direct_ms"], 1)
    out["zarr_samples_per_s"] = round(1e3 / out["zarr_ms"], 1)
    for key in ("direct_ms", "zarr_ms", "write_cpu_s"):
        out[key] = round(out[key], 3)
    return out


def _summary(alt: Alternative, n_samples: int, ref: Alternative) -> dict:
    raw = n_samples * alt.bs.pixels_per_tile**2 * len(alt.bs.bands) * np.dtype(alt.spec.dtype).itemsize
    raw *= 12 if alt.spec.is_multitemporal else 1
    n = max(alt.crops, 1)
    direct, zarr_s = sum(alt.times["direct"]), sum(alt.times["zarr"])
    return {
        "group": alt.group,
        "chunk": [1, *([alt.periods_per_chunk] if alt.spec.is_multitemporal else []), len(alt.bs.bands),
                  alt.side, alt.side],
        "chunk_footprint_m": alt.side * alt.bs.pixel_size_m,
        "crops": alt.crops,
        "direct_crops_per_s": round(alt.crops / direct, 1),
        "direct_ms_per_crop": round(1e3 * direct / n, 3),
        "direct_rel_to_reference": _relative(alt, ref, "direct"),
        "zarr_rel_to_reference": _relative(alt, ref, "zarr"),
        "zarr_crops_per_s": round(alt.crops / zarr_s, 1),
        "chunks_per_crop": round(alt.counters["chunks"] / n, 2),
        "disk_bytes_per_crop": round(alt.counters["stored_bytes"] / n),
        "decoded_bytes_per_crop": round(alt.counters["decoded_bytes"] / n),
        "used_bytes_per_crop": round(alt.used_bytes / n),
        "decoded_over_used": round(alt.counters["decoded_bytes"] / max(alt.used_bytes, 1), 2),
        "stored_mib": round(alt.stored_bytes / 2**20, 2),
        "compression_ratio": round(raw / alt.stored_bytes, 2),
        "write_cpu_s_per_sample": round(alt.write_cpu_s / n_samples, 4),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=16, help="corpus rows (demo tiles, rotated)")
    parser.add_argument("--samples-per-shard", type=int, default=4)
    parser.add_argument("--batches", type=int, default=48, help="training batches of 8 crops read")
    parser.add_argument("--passes", type=int, default=2, help="times every crop is read per store")
    parser.add_argument("--groups", default=",".join(ALTERNATIVES), help="comma-separated groups")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    load_start = os.getloadavg()
    specs = modality_set("default")
    by_name = {s.name: s for s in specs}
    print(f"realistic pixels for {args.samples} samples …", flush=True)
    results = realistic_results(n_samples=args.samples, specs=specs)
    crops = _crop_windows(results, specs=specs, n_batches=args.batches, batch=8, seed=3622)
    work = Path(tempfile.mkdtemp(prefix="olmoearth-chunking-"))
    alts: list[Alternative] = []
    try:
        for group in args.groups.split(","):
            mod, bs_name = group.split("/")
            spec = by_name[mod]
            one, every = ALTERNATIVES[group]
            for t, sides in ((1, one), (12, every)):
                for side in sides:
                    alt = Alternative(group, spec, spec.bandset(bs_name), side, t, work / f"{len(alts)}.zarr")
                    _write(alt, results, args.samples_per_shard)
                    mib = alt.stored_bytes / 2**20
                    print(f"wrote {alt.name}: {mib:.1f} MiB, {alt.write_cpu_s:.2f} CPU s", flush=True)
                    alts.append(alt)
        # one round = one training batch's crops, every alternative in turn (rotated each round), so
        # load spikes of the shared machine hit all alternatives alike; --passes repeats the crops
        rounds = [crops[i : i + 8] for i in range(0, len(crops), 8)] * args.passes
        for r, part in enumerate(rounds):
            order = alts[r % len(alts) :] + alts[: r % len(alts)]
            for alt in order:
                for reader in ("direct", "zarr"):
                    alt.times[reader].append(_read(alt, part, results, reader=reader))
            if (r + 1) % 24 == 0:
                print(f"round {r + 1}/{len(rounds)}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summaries = [_summary(a, args.samples, _reference(alts, a)) for a in alts]
    result = {
        "benchmark": "inner chunk shape vs random-crop reads of the training sampler (default modality set)",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "machine": {"platform": platform.platform(), "processor": cpu_name(), "cpus": os.cpu_count(),
                    "load_avg_start": [round(x, 2) for x in load_start],
                    "load_avg_end": [round(x, 2) for x in os.getloadavg()]},
        "versions": {"python": platform.python_version(), "zarr": zarr.__version__, "numpy": np.__version__},
        "data": "realistic_corpus.py: real S2 of the demo corpus (rotated), other modalities derived from it",
        "samples": args.samples, "samples_per_shard": args.samples_per_shard,
        "crops": len(crops), "passes": args.passes,
        "reference": "the layout before: [1 sample, 1 period, all bands, whole tile]; *_rel_to_reference = "
                     "median over rounds of (time / the reference's time in the same round), < 1 is faster",
        "sampling": "plan_batch/plan_crop over the default set: p U{1..8}, h U{1..12}, budget 2250",
        "compressor": "blosc zstd clevel 3 bitshuffle",
        "storage": "local disk, files in the page cache (warm); bytes columns say what a cold read costs",
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "per_sample": {
            "chosen (layout.Chunking default)": _per_sample(summaries, Chunking(), specs),
            "before (whole tile, one period per chunk)": _per_sample(
                summaries, Chunking.uniform(side_px=1024, monthly_periods=1), specs
            ),
            "note": "sum over every bandset of the default set of its mean read time per crop; cdl and "
            "canopy height use worldcover's figures (same dtype and band count)",
        },
        "alternatives": summaries,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    _print_table(summaries)
    print(json.dumps(result["per_sample"], indent=2))
    return 0


def _print_table(rows: list[dict]) -> None:
    cols = ("direct_crops_per_s", "direct_rel_to_reference", "zarr_crops_per_s", "zarr_rel_to_reference",
            "chunks_per_crop", "decoded_over_used", "disk_bytes_per_crop", "compression_ratio",
            "write_cpu_s_per_sample")  # fmt: skip
    print(f"{'alternative':<52}" + "".join(f"{c[:14]:>16}" for c in cols))
    for r in rows:
        label = f"{r['group']} {r['chunk']}"
        print(f"{label:<52}" + "".join(f"{r[c]:>16}" for c in cols))


if __name__ == "__main__":
    sys.exit(main())
