"""Build a twin corpus large enough to score probes on (docs/evaluation.md): one tile at each of up
to 48 places on six continents, every ``default``-set source, the same centre date.

The demo corpus (8 tiles in 5 cells) cannot fit and score a WorldCover probe on held-out cells; this
one spreads its tiles over as many 40.96 km cells as places, so the cell-hash splits give several
validation and test cells. Offline: the twin generates and serves everything.

    .venv/bin/python scripts/twin_eval_corpus.py --places 36 --out data/twin-eval

writes ``<out>/default.zarr`` (with norm stats) and ``<out>/samples.parquet``; rerunning resumes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from pathlib import Path

from olmoearth_data.build import BuildConfig, build_corpus
from olmoearth_data.cli_errors import CliParser, run_command
from olmoearth_data.grid import tile_for_lonlat
from olmoearth_data.preflight import require_range, require_writable
from olmoearth_data.samples import Sample, write_sample_table
from olmoearth_data.stats import compute_norm_stats
from olmoearth_twin.full import serve_full_twin

#: (lon, lat) of the places, cities and farmland, first come first used.
PLACES: tuple[tuple[float, float], ...] = (
    (-122.30, 37.807), (2.35, 48.85), (13.40, 52.50), (-3.70, 40.40), (30.06, -1.95), (77.20, 28.60),
    (-47.90, -15.80), (135.50, 34.70), (-99.10, 19.40), (151.20, -33.90), (36.80, -1.30), (18.40, -33.90),
    (-58.40, -34.60), (-74.00, 40.70), (-87.60, 41.90), (-96.80, 32.80), (-0.12, 51.50), (12.50, 41.90),
    (23.70, 37.98), (31.20, 30.05), (3.40, 6.45), (39.30, -6.80), (72.85, 19.05), (90.40, 23.80),
    (100.50, 13.75), (106.80, -6.20), (116.40, 39.90), (121.50, 31.20), (127.00, 37.55), (144.95, -37.80),
    (174.76, -36.85), (-70.65, -33.45), (-77.03, -12.05), (-43.20, -22.90), (-79.40, 43.65), (-113.50, 53.55),
    (-106.60, 35.10), (-90.07, 29.95), (-5.99, 37.39), (10.75, 59.91), (24.94, 60.17), (37.62, 55.75),
    (51.39, 35.69), (46.70, 24.70), (67.00, 24.86), (85.32, 27.70), (104.07, 30.67), (-1.90, 52.48),
)  # fmt: skip
CENTRE = dt.date(2022, 7, 1)


def eval_samples(*, places: int) -> list[Sample]:
    """The tile containing each of the first ``places`` places, centre :data:`CENTRE`."""
    return [Sample(tile_for_lonlat(lon=lon, lat=lat), CENTRE) for lon, lat in PLACES[:places]]


def main(argv: list[str] | None = None) -> int:
    parser = CliParser(prog="twin_eval_corpus.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--places", type=int, default=36, help=f"tiles, one per place (1..{len(PLACES)})")
    parser.add_argument("--out", default="data/twin-eval", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="twin catalogue seed")
    parser.add_argument("--workers", type=int, default=2, help="dask workers")
    args = parser.parse_args(argv)
    return run_command("twin_eval_corpus.py", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    require_range(name="--places", value=args.places, low=1, high=len(PLACES))
    out = Path(args.out)
    require_writable(path=out, what="--out")
    out.mkdir(parents=True, exist_ok=True)
    samples = eval_samples(places=args.places)
    table, corpus = out / "samples.parquet", out / "default.zarr"
    write_sample_table(table, samples=samples)
    t0 = time.perf_counter()

    def say(line: str) -> None:
        print(f"  {time.perf_counter() - t0:5.0f} s  {line}", flush=True)

    with serve_full_twin(samples=samples, seed=args.seed, cache_dir=Path("build/twin/cache"),
                         root=Path("build/twin-eval"), log=say) as full:  # fmt: skip
        config = BuildConfig(
            corpus=str(corpus), sample_table=str(table), modalities="default", samples_per_shard=1,
            cache_dir=str(out / "cache"), workers=args.workers, catalog=full.catalog,
        )  # fmt: skip
        summary = build_corpus(config, progress=True)
    compute_norm_stats(corpus)
    wall = time.perf_counter() - t0
    print(f"{corpus}: {summary.complete} complete, {summary.dropped} dropped in {wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
