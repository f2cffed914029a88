"""``olmoearth-twin``: generate the twin's catalogue and serve it in the foreground.

olmoearth-twin serve [--collections default|s2|all] [--tiles N | --samples TABLE] [--seed 0] [--root DIR]
olmoearth-twin generate [same options]

By default the twin serves every source the ``default`` modality set reads — the STAC collections
sentinel-2-l2a, sentinel-1-rtc, landsat-c2-l2, esa-worldcover, nasadem, cop-dem-glo-30 and usda-cdl,
and the WRI canopy-height and WorldCereal tile indexes — for the demo's eight samples, from the same
cache as ``make demo`` (``build/twin/cache``: ~1 minute cold, ~0 s warm). ``--collections s2`` serves
Sentinel-2 only; ``all`` adds NAIP. ``--tiles N`` takes the first N rows of the twin's default table
(the OSM fixtures' places are rows 9-14) and ``--samples`` any sample table (Parquet or CSV with
``tile_id`` and ``centre_date``, as ``olmoearth-data sample`` writes).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from olmoearth_data.samples import Sample, read_sample_table
from olmoearth_twin.catalog.naip import generate_naip
from olmoearth_twin.catalog.samples import DEFAULT_SAMPLES, DEMO_SAMPLES, default_samples
from olmoearth_twin.catalog.sentinel2 import generate_sentinel2
from olmoearth_twin.catalog.store import Catalog
from olmoearth_twin.full import generate_full, twin_samples
from olmoearth_twin.servers.twin import DEFAULT_ROOT, Twin

COLLECTION_CHOICES = ("default", "s2", "all")


def _samples(args: argparse.Namespace) -> tuple[Sample, ...]:
    if args.samples:
        return twin_samples(read_sample_table(args.samples))
    if args.tiles is not None:
        return default_samples(n_tiles=args.tiles)
    return DEMO_SAMPLES


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _generate(args: argparse.Namespace, *, samples: tuple[Sample, ...]) -> list[Catalog]:
    cache = Path(args.cache_dir) if args.cache_dir else Path(args.root) / "cache"
    print(f"generating (or reusing) the catalogues for {len(samples)} samples under {cache}", flush=True)

    def say(line: str) -> None:
        print(f"  {line}", flush=True)

    builders: list[tuple[str, Callable[[], list[Catalog]]]] = []
    if args.collections == "s2":
        builders.append(
            ("sentinel-2-l2a", lambda: [generate_sentinel2(samples=samples, seed=args.seed, cache_dir=cache)])
        )
    else:
        builders.append(
            (
                "default-set sources",
                lambda: generate_full(samples=samples, seed=args.seed, cache_dir=cache, log=say).all(),
            )
        )
    if args.collections == "all":
        builders.append(("naip", lambda: [generate_naip(samples=samples, seed=args.seed, cache_dir=cache)]))
    catalogs: list[Catalog] = []
    for name, build in builders:
        t0 = time.perf_counter()
        for catalog in build():
            n_items = len(catalog.items_path.read_text().splitlines())
            print(f"  {catalog.root} ({n_items} items, {_size_mb(catalog.root):.0f} MB)", flush=True)
            catalogs.append(catalog)
        print(f"{name}: ready in {time.perf_counter() - t0:.1f} s", flush=True)
    return catalogs


def _serve(args: argparse.Namespace, *, samples: tuple[Sample, ...]) -> int:
    catalogs = _generate(args, samples=samples)
    stop = threading.Event()
    # SIGTERM (e.g. from a process manager) should shut down as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Twin(root=Path(args.root), catalog=catalogs) as twin:
        print(f"\nPlanetary Computer twin ready in {twin.startup_s:.1f} s", flush=True)
        print(f"  STAC API : {twin.stac_url}")
        print(f"  SAS API  : {twin.sas_url}")
        print(f"  blobs    : {twin.assets_url}")
        for catalog in catalogs:
            print(f"  manifest : {catalog.manifest_path}")
            for name in catalog.manifest().get("tile_indexes", {}):
                print(f"  index    : {twin.tile_index_url(name)}")
        print("\nIn another shell:")
        for key, value in twin.env.items():
            print(f"  export {key}={value}")
        print("\nCtrl-C to stop.", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        print("stopping the twin...", flush=True)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="olmoearth-twin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("serve", "generate (cached) and serve the twin until Ctrl-C"),
        ("generate", "only generate the catalogue (cached) and print its folder"),
    ):
        p = sub.add_parser(name, help=help_text, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        which = p.add_mutually_exclusive_group()
        which.add_argument(
            "--tiles",
            type=int,
            default=None,
            help=f"first N rows of the twin's default sample table (1-{len(DEFAULT_SAMPLES)}) "
            "instead of the demo's samples",
        )
        which.add_argument("--samples", help="sample table instead (Parquet or CSV: tile_id, centre_date)")
        p.add_argument("--seed", type=int, default=0, help="catalogue generator seed")
        p.add_argument("--root", default=str(DEFAULT_ROOT), help="working folder (cluster, logs, cache/)")
        p.add_argument("--cache-dir", default=None, help="catalogue cache folder (default: ROOT/cache)")
        p.add_argument(
            "--collections",
            choices=COLLECTION_CHOICES,
            default="default",
            help="default: every source the default modality set reads; s2: Sentinel-2 only; all: + NAIP",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``olmoearth-twin`` console script."""
    args = _parser().parse_args(argv)
    try:
        samples = _samples(args)
    except (ValueError, FileNotFoundError) as err:  # bad --tiles / --samples: one line, exit 2
        print(f"olmoearth-twin: error: {err}", file=sys.stderr)
        return 2
    if args.command == "generate":
        _generate(args, samples=samples)
        return 0
    return _serve(args, samples=samples)


if __name__ == "__main__":
    sys.exit(main())
