"""``olmoearth-twin``: generate the twin's catalogue and serve it in the foreground.

olmoearth-twin serve [--tiles 8] [--samples table.csv] [--seed 0] [--root build/twin] [--collections s2|all]
olmoearth-twin generate [same options]

Defaults keep the catalogue within budget (S2 over the first 8 tiles: ~175 MB, ~25 s). ``--collections
all`` adds the other PC collections (generate_collections), NAIP and the non-PC maps (canopy height,
WorldCereal); ``--tiles 14 --collections all`` also covers the OSM fixtures' places (~417 MB, ~75 s).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from olmoearth_twin.catalog.collections import generate_collections
from olmoearth_twin.catalog.maps import generate_maps
from olmoearth_twin.catalog.naip import generate_naip
from olmoearth_twin.catalog.samples import DEFAULT_SAMPLES, Sample, default_samples, load_samples
from olmoearth_twin.catalog.sentinel2 import generate_sentinel2
from olmoearth_twin.catalog.store import Catalog
from olmoearth_twin.servers.twin import DEFAULT_ROOT, Twin


def _samples(args: argparse.Namespace) -> tuple[Sample, ...]:
    if args.samples:
        return load_samples(path=Path(args.samples))
    return default_samples(n_tiles=args.tiles)


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _generate(args: argparse.Namespace) -> list[Catalog]:
    root = Path(args.root)
    samples = _samples(args)
    cache = root / "cache"
    builders: list[tuple[str, Callable[[], Catalog]]] = [
        (
            "sentinel-2-l2a",
            lambda: generate_sentinel2(
                samples=samples,
                seed=args.seed,
                cache_dir=cache,
                log=lambda line: print(f"  generated {line}", flush=True),
            ),
        )
    ]
    if args.collections == "all":
        builders += [
            (
                "other collections",
                lambda: generate_collections(samples=samples, seed=args.seed, cache_dir=cache),
            ),
            ("naip", lambda: generate_naip(samples=samples, seed=args.seed, cache_dir=cache)),
            ("maps", lambda: generate_maps(samples=samples, seed=args.seed, cache_dir=cache)),
        ]
    catalogs = []
    for name, build in builders:
        t0 = time.perf_counter()
        catalog = build()
        n_items = len(catalog.items_path.read_text().splitlines())
        print(
            f"{name}: {catalog.root} ({n_items} items, {_size_mb(catalog.root):.0f} MB, "
            f"{time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
        catalogs.append(catalog)
    return catalogs


def _serve(args: argparse.Namespace) -> int:
    catalogs = _generate(args)
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


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``olmoearth-twin`` console script."""
    parser = argparse.ArgumentParser(
        prog="olmoearth-twin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("serve", "generate (cached) and serve the twin until Ctrl-C"),
        ("generate", "only generate the catalogue (cached) and print its folder"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument(
            "--tiles",
            type=int,
            default=8,
            help=f"first N tiles of the default sample table (1-{len(DEFAULT_SAMPLES)}; default 8)",
        )
        p.add_argument("--samples", help="sample table file instead: CSV (tile_id,centre) or YAML/JSON list")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--root", default=str(DEFAULT_ROOT), help="working folder (cluster, logs, cache/)")
        p.add_argument(
            "--collections",
            choices=("all", "s2"),
            default="s2",
            help="s2 (default): S2 only; all: + S1, Landsat, WorldCover, DEMs, CDL, NAIP, maps",
        )
    args = parser.parse_args(argv)
    if args.command == "generate":
        _generate(args)
        return 0
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
