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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
