"""``olmoearth-data`` command line. Each subcommand lives next to the code it drives."""

from __future__ import annotations

import argparse
import json
import sys

from olmoearth_data.grid import Tile, tile_for_lonlat
from olmoearth_data.modalities import MODALITY_SETS, modality_set, registry_to_dict


def _cmd_tile(args: argparse.Namespace) -> int:
    if args.id:
        tile = Tile.from_id(args.id)
    elif args.lon is not None and args.lat is not None:
        tile = tile_for_lonlat(lon=args.lon, lat=args.lat)
    else:
        raise SystemExit("error: give either --id TILE_ID or both --lon and --lat")
    lon, lat = tile.centre_lonlat
    print(json.dumps({"id": tile.id, "epsg": tile.epsg, "col": tile.col, "row": tile.row,
                      "bounds": tile.bounds, "centre_lonlat": [lon, lat]}, indent=2))  # fmt: skip
    return 0


def _cmd_modalities(args: argparse.Namespace) -> int:
    specs = modality_set(args.set)
    if args.json:
        print(json.dumps(registry_to_dict(specs), indent=2))
        return 0
    for spec in specs:
        bandsets = "; ".join(f"{bs.name}: {' '.join(bs.bands)}" for bs in spec.bandsets)
        print(f"{spec.name:24s} {spec.role.value:11s} {spec.temporal.value:8s} {spec.dtype:8s} {bandsets}")
    return 0


def _cmd_build(args: argparse.Namespace) -> int:
    from olmoearth_data.build import BuildConfig, build_corpus
    from olmoearth_data.materialise.tile_export import open_osm_dir, tile_indexes_from_args
    from olmoearth_data.stac.catalog import CatalogConfig, RetryPolicy

    if args.osm_dir:
        open_osm_dir(args.osm_dir)  # a wrong folder fails here, not in every worker task
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
        print(f"error: {message}", file=sys.stderr)
        return 3
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    from olmoearth_data.stats import compute_norm_stats

    stats = compute_norm_stats(args.corpus)
    print(json.dumps(stats, indent=2))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
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
    from olmoearth_data.index import write_index

    print(write_index(corpus=args.corpus, out=args.out))
    return 0


def _cmd_quicklook(args: argparse.Namespace) -> int:
    from olmoearth_data.quicklook import quicklook

    print(quicklook(args.corpus, sample=args.sample, out=args.out))
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from pathlib import Path

    from olmoearth_data.osm.pipeline import estimate, fetch_overpass, format_estimate, run_sampling

    osm = args.osm
    if args.overpass_bbox:
        try:
            bbox = tuple(float(v) for v in args.overpass_bbox.split(","))
        except ValueError:
            bbox = ()
        if len(bbox) != 4:
            raise ValueError(f"--overpass-bbox must be W,S,E,N in degrees, got {args.overpass_bbox!r}")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="olmoearth-data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("tile", help="tile id, bounds and centre for a lon/lat point or a tile id")
    p.add_argument("--id", help="tile id, e.g. EPSG:32610_248_-2176")
    p.add_argument("--lon", type=float)
    p.add_argument("--lat", type=float)
    p.set_defaults(func=_cmd_tile)

    p = sub.add_parser("modalities", help="list the modalities of a set")
    p.add_argument(
        "--set", default="default", help=f"one of {sorted(MODALITY_SETS)} or comma-separated names"
    )
    p.add_argument("--json", action="store_true", help="print the serialised registry")
    p.set_defaults(func=_cmd_modalities)

    from olmoearth_data.materialise.tile_export import TILE_INDEX_HELP, TILE_INDEX_METAVAR, parse_tile_index
    from olmoearth_data.sources import PLANETARY_COMPUTER_STAC_URL

    p = sub.add_parser("build", help="build (or resume) a corpus from a sample table")
    p.add_argument("--samples", required=True, help="sample table (.parquet or .csv: tile_id, centre_date)")
    p.add_argument("--corpus", required=True, help="output Zarr store, e.g. data/corpus.zarr")
    p.add_argument("--modalities", default="default", help=f"modality set {sorted(MODALITY_SETS)} or names")
    p.add_argument("--samples-per-shard", type=int, default=4)
    p.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    p.add_argument("--scheduler", default=None, help="dask scheduler address (default: a LocalCluster)")
    p.add_argument("--max-per-host", type=int, default=8,
                   help="cluster-wide concurrent reads toward one host (STAC API, blob storage)")  # fmt: skip
    p.add_argument("--stac-url", default=PLANETARY_COMPUTER_STAC_URL)
    p.add_argument("--blob-endpoint", default=None, help="Azurite-style endpoint replacing Azure blob hosts")
    p.add_argument("--no-sign", action="store_true", help="do not SAS-sign hrefs (non-PC catalogues)")
    p.add_argument("--cache-dir", default="data/cache", help="per-sample STAC search cache")
    p.add_argument("--retries", type=int, default=6)
    p.add_argument("--backoff-s", type=float, default=1.0)
    p.add_argument("--sas-url", default=None,
                   help="SAS token endpoint (default: PC_SDK_SAS_URL, else PC's)")  # fmt: skip
    p.add_argument("--allow-href-prefix", action="append", metavar="PREFIX",
                   help="also read asset hrefs starting with PREFIX (a local mirror, e.g. "
                        "file:///data/mirror/); other non-http(s) hrefs are refused; repeatable")  # fmt: skip
    p.add_argument("--osm-dir", default=None,
                   help="extract_osm output folder for openstreetmap_raster (`sample --osm F --out "
                        "S.parquet` leaves it in S.work); without it that modality is missing")  # fmt: skip
    p.add_argument("--tile-index", action="append", type=parse_tile_index, metavar=TILE_INDEX_METAVAR,
                   help=TILE_INDEX_HELP)  # fmt: skip
    p.set_defaults(func=_cmd_build)

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
    p.add_argument("--per-category", type=int, default=10_000, help="max tiles drawn per category")
    p.add_argument("--seed", type=int, default=0)
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

    p = sub.add_parser("stats", help="compute per-band normalisation stats of a corpus (stored in it)")
    p.add_argument("corpus")
    p.set_defaults(func=_cmd_stats)

    p = sub.add_parser("verify", help="check every complete sample's shards and checksums; name the damaged")
    p.add_argument("corpus")
    p.add_argument("--reset", action="store_true",
                   help="mark damaged samples pending (and quarantine unreadable shard files) so that "
                        "rerunning the same `build` rebuilds exactly their shards")  # fmt: skip
    p.add_argument("--workers", type=int, default=None, help="dask threads (default: the CPU count)")
    p.add_argument("--scheduler", default=None, help="dask scheduler address, or threads/processes")
    p.add_argument("--decode", action="store_true", help="also decompress checksummed chunks (slower)")
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("index", help="write the corpus's sample index (GeoParquet, one row per sample)")
    p.add_argument("corpus")
    p.add_argument("--out", default=None, help="output file (default: <corpus stem>.index.parquet beside it)")
    p.set_defaults(func=_cmd_index)

    p = sub.add_parser("quicklook", help="PNG of one sample: S2 RGB per period and the maps")
    p.add_argument("corpus")
    p.add_argument("--sample", type=int, default=0)
    p.add_argument("--out", default="quicklook.png")
    p.set_defaults(func=_cmd_quicklook)

    from olmoearth_data.materialise.tile_export import add_materialise_parser

    add_materialise_parser(sub)  # `materialise TILE_ID --date … --out DIR`: one tile as files to inspect
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (KeyError, ValueError, FileNotFoundError, FileExistsError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        from olmoearth_data.cube.disk import disk_full_message, is_disk_full

        if not is_disk_full(exc):
            raise
        where = getattr(args, "corpus", None) or exc.filename or "the output"
        print(f"error: {disk_full_message(path=where, doing='writing', exc=exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.func is not _cmd_build:
            raise
        print("interrupted: rerun the same command to resume the build", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
