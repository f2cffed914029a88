"""`make demo`: a local Planetary Computer twin → a corpus of the whole ``default`` modality set → Nano
trained on CPU on every modality.

Offline and self-contained: starts the twin (PostgreSQL + pgstac + stac-fastapi, SAS stand-in, blob
server) over catalogues generated for the demo samples — Sentinel-2, S1 RTC, Landsat L2, WorldCover,
NASADEM, CDL, and WRI canopy height + WorldCereal behind their tile indexes
(:func:`olmoearth_twin.full.serve_full_twin`) — builds the corpus with the real pipeline (pystac-client
search, SAS signing, odc-stac reads, dask.distributed; the OSM raster rasterised from the West Oakland
OSM fixture), computes norm stats, trains, and writes a loss plot and a quicklook. Reruns reuse the
cached catalogues and the finished corpus.

Options other than the defaults get their own folders (``data/demo-tiles4``, ``runs/demo-tiles4-steps100``
…), so they never overwrite a finished demo; an explicit ``--data`` holding another demo's corpus is
refused before anything is written. Errors are one line (``make demo: error: …``), exit 2.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import time
from pathlib import Path

import pandas as pd

from olmoearth_data.build import BuildConfig, build_corpus
from olmoearth_data.cli_errors import CliParser, run_command
from olmoearth_data.index import index_path
from olmoearth_data.osm.extract import extract_osm
from olmoearth_data.preflight import PreflightError, require_range, require_writable
from olmoearth_data.quicklook import quicklook
from olmoearth_data.samples import Sample, write_sample_table
from olmoearth_data.stats import compute_norm_stats
from olmoearth_model.train.config import TrainConfig
from olmoearth_model.train.loop import pick_device, train
from olmoearth_model.train.plot import plot_run, read_metrics
from olmoearth_twin.catalog.samples import DEMO_SAMPLES, OAKLAND
from olmoearth_twin.fixtures import fixture_path
from olmoearth_twin.full import serve_full_twin

#: The West Oakland OSM fixture: its tile is the demo's CONUS sample (CDL) and the OSM raster's input.
OAKLAND_OSM = fixture_path("osm/West-Oakland.osm.bz2")
MAX_TILES = len(DEMO_SAMPLES)
PROG = "make demo"


def demo_samples(*, tiles: int) -> list[Sample]:
    """``tiles`` samples: the first ``tiles − 1`` of the twin's :data:`DEMO_SAMPLES` (British Columbia,
    Hungary, East Africa, Western Sahara) and West Oakland last, so every modality has data somewhere."""
    if not 1 <= tiles <= MAX_TILES:
        raise ValueError(f"--tiles must be between 1 and {MAX_TILES}, got {tiles}")
    return [*DEMO_SAMPLES[: tiles - 1], OAKLAND]


def _presence(corpus: Path) -> str:
    """Per modality, how many samples hold data, from the sample index."""
    df = pd.read_parquet(index_path(corpus))
    cols = [c for c in df.columns if c.endswith(":present")]
    return ", ".join(f"{c.split(':')[0]} {int((df[c] > 0).sum())}/{len(df)}" for c in cols)


def option_folders(args: argparse.Namespace) -> tuple[Path, Path]:
    """``(data, run)`` folders of a demo: the defaults for the default options, otherwise folders named
    after the options that differ (``--data``/``--run`` when given), so option sets never share one."""
    data_tag = "".join(
        f"-{k}{v}" for k, v, d in (("tiles", args.tiles, MAX_TILES), ("seed", args.seed, 0)) if v != d
    )
    run_tag = data_tag + (f"-steps{args.steps}" if args.steps is not None else "")
    if args.config != "pipelines/demo.yaml" or args.overrides:
        what = "\n".join([args.config, *args.overrides]).encode()
        run_tag += f"-{Path(args.config).stem}-{hashlib.sha256(what).hexdigest()[:8]}"
    data = Path(args.data) if args.data else Path(f"data/demo{data_tag}")
    run = Path(args.run) if args.run else Path(f"runs/demo{run_tag}")
    return data, run


def refuse_other_corpus(*, corpus: Path, samples: list[Sample]) -> None:
    """Refuse, before writing anything, a ``corpus`` that exists with other samples (another option set)."""
    if not corpus.exists():
        return
    import zarr

    stored = [str(t) for t in zarr.open_group(str(corpus), mode="r")["tile_id"][:]]
    if stored != [s.tile.id for s in samples]:
        raise PreflightError(
            f"{corpus} holds a demo of {len(stored)} samples, not these {len(samples)}; "
            "choose another --data "
            "(or leave --data out: each option set gets its own folder)"
        )


def build_demo_corpus(*, data: Path, tiles: int, seed: int) -> Path:
    """Generate (or reuse) the twin catalogues, serve them, build (or resume) the ``default``-set corpus
    ``<data>/default.zarr`` of :func:`demo_samples` and compute its norm stats; returns the corpus path."""
    samples = demo_samples(tiles=tiles)
    refuse_other_corpus(corpus=data / "default.zarr", samples=samples)
    data.mkdir(parents=True, exist_ok=True)
    table = data / "samples.parquet"
    write_sample_table(table, samples=samples)
    corpus = data / "default.zarr"
    osm_dir = data / "osm"
    if not (osm_dir / "extent.json").exists():
        extract_osm(path=OAKLAND_OSM, out_dir=osm_dir)
    print(f"[1/4] twin catalogues for {len(samples)} samples (cached under build/twin/cache; "
          "~1 min the first time), then the twin's servers", flush=True)  # fmt: skip
    t0 = time.perf_counter()

    def say(line: str) -> None:
        print(f"      {time.perf_counter() - t0:5.0f} s  {line}", flush=True)

    with serve_full_twin(samples=samples, seed=seed, cache_dir=Path("build/twin/cache"),
                         root=Path("build/twin-demo"), log=say) as full:  # fmt: skip
        say("twin serving")
        twin = full.twin
        print(f"      STAC API {twin.stac_url}  blobs {twin.assets_url}  SAS {twin.sas_url}", flush=True)
        print(f"[2/4] building {corpus} (default modality set) from the twin (dask LocalCluster)", flush=True)
        config = BuildConfig(
            corpus=str(corpus), sample_table=str(table), modalities="default", samples_per_shard=1,
            cache_dir=str(data / "cache"), workers=2, catalog=full.catalog, osm_dir=str(osm_dir),
        )  # fmt: skip
        summary = build_corpus(config, progress=True)
    print(
        f"      {summary.complete} complete, {summary.dropped} dropped, {summary.shards_built} shards built"
    )
    print(f"      samples with data: {_presence(corpus)}", flush=True)
    compute_norm_stats(corpus)
    return corpus


def _refuse_stale_run(run_dir: Path, *, corpus: Path, resume: bool) -> None:
    """Stop with a clear message when ``run_dir`` holds a checkpoint trained on another corpus (e.g. the
    earlier Sentinel-2-only demo's ``data/demo/s2.zarr``): resuming it would load a model of other
    modalities."""
    saved = run_dir / "config.yaml"
    if not (resume and (run_dir / "checkpoint.pt").exists() and saved.exists()):
        return
    try:
        previous = TrainConfig.load(saved).data.corpus
    except ValueError as exc:  # ConfigError: e.g. the flat config of a run from before the nested sections
        raise PreflightError(
            f"{run_dir} holds a run whose config.yaml this version cannot read ({exc}); remove it, "
            f"or pass --run to train elsewhere"
        ) from None
    if Path(previous).resolve() != corpus.resolve():
        raise PreflightError(
            f"{run_dir} holds a run trained on {previous}, not {corpus}; remove it, or pass "
            f"--run to train elsewhere (or checkpoint.resume=false to start over in place)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = CliParser(prog=PROG, description=__doc__)
    parser.add_argument(
        "--tiles", type=int, default=MAX_TILES,
        help=f"samples in the demo corpus (1..{MAX_TILES}; West Oakland is always one of them)",
    )  # fmt: skip
    parser.add_argument(
        "--steps", type=int, default=None, help="training steps (default: pipelines/demo.yaml)"
    )
    parser.add_argument("--data", default=None, help="where the corpus goes (default: data/demo[-OPTIONS])")
    parser.add_argument(
        "--run", default=None, help="where the training run goes (default: runs/demo[-OPTIONS])"
    )
    parser.add_argument("--config", default="pipelines/demo.yaml", help="training config YAML")
    parser.add_argument("--seed", type=int, default=0, help="catalogue seed")
    parser.add_argument("overrides", nargs="*", help="training config overrides, e.g. data.global_batch=2")
    args = parser.parse_args(argv)
    return run_command(PROG, lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("distributed").setLevel(logging.WARNING)
    t0 = time.perf_counter()
    require_range(name="--tiles", value=args.tiles, low=1, high=MAX_TILES)
    if args.steps is not None:
        require_range(name="--steps", value=args.steps, low=1)
    data, run = option_folders(args)
    for folder, option in ((data, "--data"), (run, "--run")):
        require_writable(path=folder, what=option)
    corpus = data / "default.zarr"
    # The config and its overrides are checked now, not after minutes of corpus building.
    overrides = [f"data.corpus={corpus}", f"run_dir={run}", *args.overrides]
    if args.steps is not None:
        overrides.append(f"schedule.max_steps={args.steps}")
    train_config = TrainConfig.load(args.config, overrides=overrides)
    _refuse_stale_run(Path(train_config.run_dir), corpus=corpus, resume=train_config.checkpoint.resume)
    refuse_other_corpus(corpus=corpus, samples=demo_samples(tiles=args.tiles))
    build_demo_corpus(data=data, tiles=args.tiles, seed=args.seed)
    print(
        f"[3/4] training {train_config.model.size} for {train_config.schedule.max_steps} steps on "
        f"{pick_device(train_config.parallel.device)}, every modality of the corpus",
        flush=True,
    )
    run_dir = train(train_config)
    rows = read_metrics(run_dir / "metrics.jsonl")
    probes = [r["probe_loss"] for r in rows if "probe_loss" in r]

    print("[4/4] plots", flush=True)
    loss_png = plot_run(run_dir)
    # West Oakland (the last sample) has data in every modality, the OSM raster and CDL included
    look_png = quicklook(corpus, sample=args.tiles - 1, out=run_dir / "quicklook.png")
    print(f"\ndone in {time.perf_counter() - t0:.0f} s")
    print(f"  corpus     {corpus}   (xr.open_datatree('{corpus}', engine='zarr'))")
    print(f"  run        {run_dir}  (config.yaml, metrics.jsonl, model.pt)")
    print(f"  loss plot  {loss_png}")
    print(f"  quicklook  {look_png}")
    if probes:
        print(f"  probe-batch loss {probes[0]:.4f} → {probes[-1]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
