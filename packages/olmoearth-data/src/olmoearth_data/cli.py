"""``olmoearth-data`` command line. Each subcommand lives next to the code it drives.

Every subcommand checks its arguments, inputs and outputs before any work (:mod:`olmoearth_data.preflight`)
and reports a problem a person can fix as one line, ``olmoearth-data: error: …``, exit status 2, with
nothing written (:mod:`olmoearth_data.cli_errors`). Imports are lazy so that ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from olmoearth_data.cli_errors import CliParser, fail, one_line, run_command
from olmoearth_data.preflight import PreflightError, require_input, require_range, require_writable

PROG = "olmoearth-data"
#: Mirrors :data:`olmoearth_data.sources.PLANETARY_COMPUTER_STAC_URL` without importing it (help speed);
#: tests/cli checks the two agree.
PLANETARY_COMPUTER_STAC_URL = "https://planetarycomputer.microsoft.com/api/stac/v1"
#: Help of options whose registration (in other modules) gives none; filled in by :func:`_fill_help`.
COMMON_HELP = {
    "stac_url": "STAC API root (Planetary Computer, its twin, or another catalogue)",
    "retries": "attempts per request before a source counts as failed",
    "backoff_s": "first retry delay in seconds (doubles per attempt)",
}
_MODALITY_SETS_HELP = "default, s2, v1"


def _corpus(path: str) -> Path:
    return require_input(
        path=path, what="corpus", hint="build one with `olmoearth-data build` or `make demo`"
    )


def _cmd_tile(args: argparse.Namespace) -> int:
    from olmoearth_data.grid import Tile, tile_for_lonlat

    if args.id:
        tile = Tile.from_id(args.id)
    elif args.lon is not None and args.lat is not None:
        tile = tile_for_lonlat(lon=args.lon, lat=args.lat)
    else:
        raise PreflightError("give either --id TILE_ID or both --lon and --lat")
    lon, lat = tile.centre_lonlat
    print(json.dumps({"id": tile.id, "epsg": tile.epsg, "col": tile.col, "row": tile.row,
                      "bounds": tile.bounds, "centre_lonlat": [lon, lat]}, indent=2))  # fmt: skip
    return 0


def _cmd_modalities(args: argparse.Namespace) -> int:
    from olmoearth_data.modalities import modality_set, registry_to_dict

    specs = modality_set(args.set)
    if args.json:
        print(json.dumps(registry_to_dict(specs), indent=2))
        return 0
    for spec in specs:
        bandsets = "; ".join(f"{bs.name}: {' '.join(bs.bands)}" for bs in spec.bandsets)
        print(f"{spec.name:24s} {spec.role.value:11s} {spec.temporal.value:8s} {spec.dtype:8s} {bandsets}")
    return 0


def _preflight_build(args: argparse.Namespace) -> None:
    """Everything ``build`` can check in seconds, cheapest first; the STAC request last."""
    from olmoearth_data.materialise.tile_export import open_osm_dir
    from olmoearth_data.modalities import modality_set
    from olmoearth_data.preflight import require_account_key, require_stac_reachable

    if args.osm_dir:
        open_osm_dir(args.osm_dir)  # a wrong folder fails here (and names what it lacks), not in every task

    require_range(name="--samples-per-shard", value=args.samples_per_shard, low=1)
    require_range(name="--workers", value=args.workers, low=1)
    require_range(name="--max-per-host", value=args.max_per_host, low=1)
    require_range(name="--retries", value=args.retries, low=1)
    require_range(name="--backoff-s", value=args.backoff_s, low=0)
    from olmoearth_data.samples import read_sample_table

    if not read_sample_table(args.samples):  # a missing file, column or bad row: named here, one line
        raise PreflightError(f"sample table {args.samples} has no rows")
    modality_set(args.modalities)
    require_writable(path=args.corpus, what="corpus")
    require_writable(path=args.cache_dir, what="--cache-dir")
    require_account_key(modalities=args.modalities, signing="none" if args.no_sign else "planetary_computer")
    require_stac_reachable(url=args.stac_url)


def _cmd_build(args: argparse.Namespace) -> int:
    _preflight_build(args)
    from olmoearth_data.build import BuildConfig, build_corpus
    from olmoearth_data.materialise.tile_export import tile_indexes_from_args
    from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy

    catalog = CatalogConfig(
        stac_url=args.stac_url,
        sign="none" if args.no_sign else "planetary_computer",
        blob_endpoint=args.blob_endpoint,
        retry=RetryPolicy(attempts=args.retries, backoff_s=args.backoff_s),
        tile_indexes=tile_indexes_from_args(args.tile_index),
        sas_url=args.sas_url,
        local_href_prefixes=tuple(args.allow_href_prefix or ()),
    )
    config = BuildConfig(corpus=args.corpus, sample_table=args.samples, modalities=args.modalities,
                         samples_per_shard=args.samples_per_shard, cache_dir=args.cache_dir,
                         workers=args.workers, scheduler=args.scheduler, catalog=catalog,
                         max_requests_per_host=args.max_per_host, osm_dir=args.osm_dir)  # fmt: skip
    summary = build_corpus(config, progress=True)
    print(json.dumps(summary.__dict__, indent=2))
    if summary.pending:
        from olmoearth_data.outages import incomplete_message

        message = incomplete_message(pending=summary.pending, outages=summary.outages)
        print(f"{PROG}: error: {one_line(RuntimeError(message))}", file=sys.stderr)
        return 3
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    _corpus(args.corpus)
    from olmoearth_data.stats import compute_norm_stats

    stats = compute_norm_stats(args.corpus)
    print(json.dumps(stats, indent=2))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    _corpus(args.corpus)
    if args.workers is not None:
        require_range(name="--workers", value=args.workers, low=1)
    from olmoearth_data.verify import reset_damaged, verify_corpus

    report = verify_corpus(args.corpus, scheduler=args.scheduler, workers=args.workers, decode=args.decode)
    doc = report.to_dict()
    for d in report.damaged:
        print(f"damaged: sample {d.sample} ({d.tile_id}): {'; '.join(d.problems)}", file=sys.stderr)
    if args.reset:
        doc["reset_to_pending"] = reset_damaged(args.corpus, report=report)
    print(json.dumps(doc, indent=2))
    if report.ok:
        print(
            f"verify: {report.complete} complete samples, {report.chunks} chunks: no damage", file=sys.stderr
        )
        return 0
    then = (
        "reset to pending; rerun the same `olmoearth-data build` to rebuild them, then `olmoearth-data stats`"
        if args.reset
        else "rerun with --reset, then the same `olmoearth-data build`, then `olmoearth-data stats`"
    )
    print(
        f"verify: {len(report.damaged)} of {report.complete} complete samples damaged; {then}",
        file=sys.stderr,
    )
    return 1


def _cmd_index(args: argparse.Namespace) -> int:
    _corpus(args.corpus)
    if args.out:
        require_writable(path=args.out, what="--out")
    from olmoearth_data.index import write_index

    print(write_index(corpus=args.corpus, out=args.out))
    return 0


def _cmd_quicklook(args: argparse.Namespace) -> int:
    _corpus(args.corpus)
    require_writable(path=args.out, what="--out")
    from olmoearth_data.quicklook import quicklook

    print(quicklook(args.corpus, sample=args.sample, out=args.out))
    return 0


def _overpass_bbox(text: str) -> tuple[float, float, float, float]:
    try:
        bbox = tuple(float(v) for v in text.split(","))
    except ValueError:
        bbox = ()
    if len(bbox) != 4:
        raise PreflightError(f"--overpass-bbox must be W,S,E,N in degrees, got {text!r}")
    west, south, east, north = bbox
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise PreflightError(f"--overpass-bbox {text!r}: need -180 ≤ W < E ≤ 180 and -90 ≤ S < N ≤ 90")
    return west, south, east, north


def _cmd_sample(args: argparse.Namespace) -> int:
    from olmoearth_data.osm.sampling import MAX_DATES_PER_TILE

    require_range(name="--per-category", value=args.per_category, low=1)
    require_range(name="--dates-per-tile", value=args.dates_per_tile, low=1, high=MAX_DATES_PER_TILE)
    require_range(name="--workers", value=args.workers, low=1)
    for option, path in (("--osm", args.osm), ("--lonlats", args.lonlats)):
        if path:
            require_input(path=path, what=f"{option} file")
    bbox = _overpass_bbox(args.overpass_bbox) if args.overpass_bbox else None
    if not args.dry_run:
        require_writable(path=args.out, what="--out")
    from olmoearth_data.osm.pipeline import estimate, fetch_overpass, format_estimate, run_sampling

    osm = args.osm
    if bbox:
        osm = fetch_overpass(bbox=bbox, out=Path(args.out).with_suffix(".overpass.osm"),
                             overpass_url=args.overpass_url)  # fmt: skip
    res = run_sampling(out=args.out, osm=osm, lonlats=args.lonlats, per_category=args.per_category,
                       seed=args.seed, naip_stac_url=args.naip_stac_url, progress=not args.quiet,
                       dry_run=args.dry_run, dates_per_tile=args.dates_per_tile,
                       workers=args.workers)  # fmt: skip
    if args.dry_run:
        print(format_estimate(estimate(n_samples=res.n_samples)))
    else:
        print(f"wrote {res.n_samples} samples to {res.table} (per-category summary {res.summary})")
    return 0


def _preflight_materialise(args: argparse.Namespace) -> None:
    """``materialise``'s arguments, output folder, key and STAC API, checked before any read."""
    import datetime as dt

    from olmoearth_data.grid import Tile
    from olmoearth_data.preflight import require_account_key, require_stac_reachable

    Tile.from_id(args.tile_id)
    try:
        dt.date.fromisoformat(args.date)
    except ValueError:
        raise PreflightError(f"--date must be YYYY-MM-DD, got {args.date!r}") from None
    require_writable(path=args.out, what="--out")
    names = args.modalities if "," not in args.modalities else args.modalities.split(",")
    require_account_key(modalities=names, signing="none" if args.no_sign else "planetary_computer")
    require_stac_reachable(url=args.stac_url)


def _tile_index(value: str) -> tuple[str, object]:
    """``--tile-index`` parsed by :func:`~olmoearth_data.materialise.tile_export.parse_tile_index`, imported
    only when the option is given (the module pulls in rasterio and pystac)."""
    from olmoearth_data.materialise.tile_export import parse_tile_index

    return parse_tile_index(value)


def _add_build(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build", help="build (or resume) a corpus from a sample table")
    p.add_argument("--samples", required=True, help="sample table (.parquet or .csv: tile_id, centre_date)")
    p.add_argument("--corpus", required=True, help="output Zarr store, e.g. data/corpus.zarr")
    p.add_argument("--modalities", default="default", help=f"modality set ({_MODALITY_SETS_HELP}) or names")
    p.add_argument("--samples-per-shard", type=int, default=4, help="samples per Zarr shard file (≥ 1)")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    p.add_argument("--scheduler", default=None, help="dask scheduler address (default: a LocalCluster)")
    p.add_argument("--max-per-host", type=int, default=8,
                   help="cluster-wide concurrent reads toward one host (STAC API, blob storage)")  # fmt: skip
    p.add_argument("--stac-url", default=PLANETARY_COMPUTER_STAC_URL, help=COMMON_HELP["stac_url"])
    p.add_argument("--blob-endpoint", default=None, help="Azurite-style endpoint replacing Azure blob hosts")
    p.add_argument("--no-sign", action="store_true", help="do not SAS-sign hrefs (non-PC catalogues)")
    p.add_argument("--cache-dir", default="data/cache", help="per-sample STAC search cache")
    p.add_argument("--retries", type=int, default=6, help=COMMON_HELP["retries"])
    p.add_argument("--backoff-s", type=float, default=1.0, help=COMMON_HELP["backoff_s"])
    p.add_argument("--sas-url", default=None,
                   help="SAS token endpoint (default: PC_SDK_SAS_URL, else PC's)")  # fmt: skip
    p.add_argument("--allow-href-prefix", action="append", metavar="PREFIX",
                   help="also read asset hrefs starting with PREFIX (a local mirror, e.g. "
                        "file:///data/mirror/); other non-http(s) hrefs are refused; repeatable")  # fmt: skip
    p.add_argument("--osm-dir", default=None,
                   help="extract_osm output folder for openstreetmap_raster (`sample --osm F --out "
                        "S.parquet` leaves it in S.work); without it that modality is missing")  # fmt: skip
    p.add_argument("--tile-index", action="append", type=_tile_index, metavar="NAME=URL[@BASE]",
                   help="a tile-index source's GeoJSON footprint index replacing the real host's "
                        "(NAME: wri-canopy-height, worldcereal-2021); BASE is what relative hrefs "
                        "resolve against (default: the index's folder); repeatable")  # fmt: skip
    p.set_defaults(func=_cmd_build)


def _add_sample(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="OSM-stratified tile sample table (GeoParquet) with centre dates")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--osm", help="OSM file: .osm.pbf, .osm or .osm.bz2")
    src.add_argument(
        "--overpass-bbox",
        help="W,S,E,N degrees, fetched from Overpass with osmnx (write --overpass-bbox=W,... if W < 0)",
    )
    src.add_argument("--lonlats", help="JSON list of [lon, lat] points (e.g. the reference lon_lats.json)")
    p.add_argument("--overpass-url", default=None, help="Overpass API base URL (default: osmnx's setting)")
    p.add_argument("--out", required=True, help="output sample table, e.g. data/samples.parquet")
    p.add_argument("--per-category", type=int, default=10_000, help="max tiles drawn per category (≥ 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the draw and the centre dates")
    p.add_argument(
        "--dates-per-tile", type=int, default=1,
        help="samples per chosen tile, 1..5, in disjoint years; 1 = the reference rule (extension)",
    )  # fmt: skip
    p.add_argument("--naip-stac-url", default=None, help="STAC API with a 'naip' collection (NAIP-date rule)")
    p.add_argument("--dry-run", action="store_true", help="print tiles/bytes/hours estimate; write no table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--workers", type=int, default=1,
        help="processes of the OSM pass (PBF pieces in parallel); the same table for any number",
    )  # fmt: skip
    p.set_defaults(func=_cmd_sample)


def _add_corpus_tools(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stats", help="compute per-band normalisation stats of a corpus (stored in it)")
    p.add_argument("corpus", help="corpus Zarr store")
    p.set_defaults(func=_cmd_stats)

    p = sub.add_parser("verify", help="check every complete sample's shards and checksums; name the damaged")
    p.add_argument("corpus", help="corpus Zarr store")
    p.add_argument("--reset", action="store_true",
                   help="mark damaged samples pending (and quarantine unreadable shard files) so that "
                        "rerunning the same `build` rebuilds exactly their shards")  # fmt: skip
    p.add_argument("--workers", type=int, default=None, help="dask threads (default: the CPU count)")
    p.add_argument("--scheduler", default=None, help="dask scheduler address, or threads/processes")
    p.add_argument("--decode", action="store_true", help="also decompress checksummed chunks (slower)")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("index", help="write the corpus's sample index (GeoParquet, one row per sample)")
    p.add_argument("corpus", help="corpus Zarr store")
    p.add_argument("--out", default=None, help="output file (default: <corpus stem>.index.parquet beside it)")
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("quicklook", help="PNG of one sample: S2 RGB per period and every map")
    p.add_argument("corpus", help="corpus Zarr store")
    p.add_argument("--sample", type=int, default=0, help="sample number, 0 .. (samples in the corpus − 1)")
    p.add_argument("--out", default="quicklook.png", help="output PNG")
    p.set_defaults(func=_cmd_quicklook)


def _fill_help(parser: argparse.ArgumentParser) -> None:
    """Give every option of every subcommand a help line (``--help`` then shows its default too)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _fill_help(child)
        elif action.help is None and action.dest in COMMON_HELP:
            action.help = COMMON_HELP[action.dest]


def build_parser(*, materialise: bool = True) -> argparse.ArgumentParser:
    """The ``olmoearth-data`` parser; ``materialise=False`` registers ``materialise`` as a stub (its real
    options need rasterio and pystac, ~1 s to import) for commands that do not use it."""
    parser = CliParser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("tile", help="tile id, bounds and centre for a lon/lat point or a tile id")
    p.add_argument("--id", help="tile id, e.g. EPSG:32610_248_-2176 (UTM 326xx/327xx or UPS 5041/5042)")
    p.add_argument("--lon", type=float, help="longitude in degrees, -180..180 (with --lat)")
    p.add_argument("--lat", type=float, help="latitude in degrees, -90..90 (with --lon)")
    p.set_defaults(func=_cmd_tile)

    p = sub.add_parser("modalities", help="list the modalities of a set")
    p.add_argument("--set", default="default", help=f"one of {_MODALITY_SETS_HELP}, or comma-separated names")
    p.add_argument("--json", action="store_true", help="print the serialised registry")
    p.set_defaults(func=_cmd_modalities)

    _add_build(sub)
    _add_sample(sub)
    _add_corpus_tools(sub)
    if materialise:
        from olmoearth_data.materialise.tile_export import add_materialise_parser

        add_materialise_parser(sub)  # `materialise TILE_ID --date … --out DIR`: one tile as files to inspect
    else:
        sub.add_parser("materialise", help="materialise one tile into GeoTIFF/NetCDF files to look at")
    _fill_help(parser)
    return parser


def _command_name(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``olmoearth-data`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(materialise=_command_name(argv) == "materialise").parse_args(argv)

    def command() -> int:
        if args.command == "materialise":
            _preflight_materialise(args)  # its module is materialise's; the checks are the CLI's
        return args.func(args)

    try:
        return run_command(PROG, command)
    except OSError as exc:
        from olmoearth_data.cube.disk import disk_full_message, is_disk_full

        if not is_disk_full(exc):
            raise
        where = getattr(args, "corpus", None) or exc.filename or "the output"
        return fail(PROG, disk_full_message(path=where, doing="writing", exc=exc))
    except KeyboardInterrupt:
        if args.func is not _cmd_build:
            raise
        print("interrupted: rerun the same command to resume the build", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
