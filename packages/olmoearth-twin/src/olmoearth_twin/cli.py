"""``olmoearth-twin``: generate the twin's catalogue and serve it in the foreground.

olmoearth-twin serve [--tiles 8] [--samples table.csv] [--seed 0] [--root build/twin]
olmoearth-twin generate [--tiles 8] [--samples table.csv] [--seed 0] [--root build/twin]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from olmoearth_twin.catalog.samples import DEFAULT_SAMPLES, Sample, default_samples, load_samples
from olmoearth_twin.catalog.sentinel2 import generate_sentinel2
from olmoearth_twin.catalog.store import Catalog
from olmoearth_twin.servers.twin import DEFAULT_ROOT, Twin


def _samples(args: argparse.Namespace) -> tuple[Sample, ...]:
    if args.samples:
        return load_samples(path=Path(args.samples))
    return default_samples(n_tiles=args.tiles)


def _generate(args: argparse.Namespace) -> Catalog:
    root = Path(args.root)
    t0 = time.perf_counter()
    catalog = generate_sentinel2(
        samples=_samples(args),
        seed=args.seed,
        cache_dir=root / "cache",
        log=lambda line: print(f"  generated {line}", flush=True),
    )
    n_items = len(catalog.items_path.read_text().splitlines())
    print(f"catalogue: {catalog.root} ({n_items} items, {time.perf_counter() - t0:.1f} s)", flush=True)
    return catalog


def _serve(args: argparse.Namespace) -> int:
    catalog = _generate(args)
    stop = threading.Event()
    # SIGTERM (e.g. from a process manager) should shut down as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with Twin(root=Path(args.root), catalog=catalog) as twin:
        print(f"\nPlanetary Computer twin ready in {twin.startup_s:.1f} s", flush=True)
        print(f"  STAC API : {twin.stac_url}")
        print(f"  SAS API  : {twin.sas_url}")
        print(f"  blobs    : {twin.assets_url}")
        print(f"  manifest : {catalog.manifest_path}")
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
            default=len(DEFAULT_SAMPLES),
            help=f"first N tiles of the default sample table (1-{len(DEFAULT_SAMPLES)})",
        )
        p.add_argument("--samples", help="sample table file instead: CSV (tile_id,centre) or YAML/JSON list")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--root", default=str(DEFAULT_ROOT), help="working folder (cluster, logs, cache/)")
    args = parser.parse_args(argv)
    if args.command == "generate":
        _generate(args)
        return 0
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
