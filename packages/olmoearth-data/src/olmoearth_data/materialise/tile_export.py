"""Materialise one tile and write its bandsets as files a person can open (QGIS, xarray): inspection.

``olmoearth-data materialise TILE_ID --date YYYY-MM-DD --out DIR`` runs the corpus's own
:func:`~olmoearth_data.materialise.sample.materialise_sample` for one tile and writes, per
modality and bandset, ``<DIR>/<modality>__<bandset>.tif`` — bands × periods as GeoTIFF bands (band
``t·C + c`` is band ``c`` of period ``t``; descriptions ``<band>@<period start>``), the tile's UTM CRS
and transform, the modality's nodata — or, with ``--format netcdf``, ``.nc`` (dims ``time, band, y, x``,
a CF grid mapping, see :func:`write_tile_files`; written with h5netcdf or netCDF4).
``<DIR>/status.json`` records per modality ``present``, ``reason`` names and contributing item ids.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import rasterio

from olmoearth_data.grid import Tile
from olmoearth_data.materialise.osm_raster import OsmInput
from olmoearth_data.missing import MissingReason
from olmoearth_data.modalities import ModalitySpec, modality_set
from olmoearth_data.results import SampleResult
from olmoearth_data.samples import Sample
from olmoearth_data.stac.catalog import CatalogConfig
from olmoearth_data.stac.tile_index import DEFAULT_TILE_INDEXES, TileIndexRef

FORMATS = ("tif", "nc")
#: ``--format`` spellings → file suffix.
FORMAT_ALIASES = {"tif": "tif", "geotiff": "tif", "nc": "nc", "netcdf": "nc"}


TILE_INDEX_METAVAR = "NAME=URL[@BASE]"
TILE_INDEX_HELP = (
    "a tile-index source's GeoJSON footprint index, replacing the real host's; NAME is one of "
    f"{', '.join(sorted(DEFAULT_TILE_INDEXES))}; BASE is what the features' relative hrefs resolve "
    "against (default: the index's folder); repeatable"
)


def _http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def parse_tile_index(value: str) -> tuple[str, TileIndexRef]:
    """``--tile-index NAME=URL[@BASE]`` → ``(NAME, TileIndexRef(URL, BASE))`` (an argparse ``type``).

    ``BASE`` defaults to the index's folder (``URL`` up to its last ``/``). A URL that itself holds an
    ``@`` needs an explicit ``@BASE`` (the last ``@`` splits). Raises ``argparse.ArgumentTypeError``
    naming the problem for a malformed value or an unknown NAME.
    """
    known = sorted(DEFAULT_TILE_INDEXES)
    example = "e.g. wri-canopy-height=https://mirror.example/forests/v1/tiles.geojson@https://mirror.example/forests/"
    name, sep, rest = value.partition("=")
    if not sep or not name or not rest:
        raise argparse.ArgumentTypeError(f"expected {TILE_INDEX_METAVAR}, got {value!r} ({example})")
    if name not in known:
        raise argparse.ArgumentTypeError(
            f"unknown tile index {name!r} in {value!r}; known: {', '.join(known)}"
        )
    url, at, base = rest.rpartition("@") if "@" in rest else (rest, "", "")
    base = base if at else url.rsplit("/", 1)[0] + "/"
    for what, text in (("URL", url), ("BASE", base)):
        if not _http_url(text):
            raise argparse.ArgumentTypeError(
                f"{name}: {what} must be an http(s) URL, got {text!r} in {value!r} ({example})"
            )
    return name, TileIndexRef(url=url, base=base)


def tile_indexes_from_args(pairs: Sequence[tuple[str, TileIndexRef]] | None) -> dict[str, TileIndexRef]:
    """``CatalogConfig``'s default tile indexes (the real hosts) with the ``--tile-index`` overrides."""
    return {**CatalogConfig().tile_indexes, **dict(pairs or [])}


def open_osm_dir(path: Path | str) -> OsmInput:
    """The ``--osm-dir`` extraction, checked before any work: a folder with ``raster/`` and its extent."""
    folder = Path(path)
    if not (folder / "raster").is_dir():
        raise FileNotFoundError(
            f"--osm-dir {folder}: no raster/ folder of per-tile OSM features there; give the folder that "
            "extract_osm wrote (`olmoearth-data sample --osm FILE --out S.parquet` leaves it in S.work)"
        )
    return OsmInput.from_extraction(folder)


def _band_labels(spec: ModalitySpec, bands: Sequence[str], sample: Sample) -> list[str]:
    if not spec.is_multitemporal:
        return list(bands)
    return [f"{b}@{p.start.isoformat()}" for p in sample.periods for b in bands]


def write_tile_files(
    *, result: SampleResult, sample: Sample, specs: Sequence[ModalitySpec], out: Path, fmt: str = "tif"
) -> list[Path]:
    """Write every bandset of ``result`` under ``out``; returns the files written (status.json last).

    ``fmt``: ``tif``/``geotiff`` or ``nc``/``netcdf``. GeoTIFF: ``T·C`` bands of the modality dtype,
    shape ``[H, W]`` = 2560 m / pixel size, CRS ``EPSG:<tile.epsg>``, transform :meth:`Tile.transform`,
    the modality's nodata. NetCDF: one variable ``data`` ``[T, C, H, W]`` (modality dtype; ``time`` =
    period starts, or the centre date for a static map; ``band`` names; ``y``/``x`` pixel-centre
    coordinates in metres) with a CF grid mapping ``spatial_ref`` (CRS WKT + GeoTransform, read by GDAL
    and rioxarray) and the nodata as ``_FillValue`` (xarray masks it to NaN unless
    ``mask_and_scale=False``).
    """
    if fmt not in FORMAT_ALIASES:
        raise ValueError(f"format must be one of {sorted(FORMAT_ALIASES)}, got {fmt!r}")
    fmt = FORMAT_ALIASES[fmt]
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    tile = sample.tile
    for spec in specs:
        modality = result.modalities[spec.name]
        for bs in spec.bandsets:
            data = modality.arrays[bs.name]  # [T, C, H, W]
            path = out / f"{spec.name}__{bs.name}.{fmt}"
            if fmt == "tif":
                _write_tif(path=path, data=data, tile=tile, pixel_size_m=bs.pixel_size_m, spec=spec,
                           labels=_band_labels(spec, bs.bands, sample))  # fmt: skip
            else:
                _write_nc(path=path, data=data, tile=tile, pixel_size_m=bs.pixel_size_m, spec=spec,
                          bands=bs.bands, sample=sample)  # fmt: skip
            written.append(path)
    status = {
        "tile_id": tile.id,
        "centre": sample.centre.isoformat(),
        "status": result.status.name,
        "status_reason": result.status_reason,
        "modalities": {
            s.name: {
                "present": result.modalities[s.name].present.tolist(),
                "reason": [MissingReason(int(r)).name for r in result.modalities[s.name].reason],
                "item_ids": result.modalities[s.name].item_ids,
            }
            for s in specs
        },
    }
    (out / "status.json").write_text(json.dumps(status, indent=1))
    written.append(out / "status.json")
    return written


def _write_tif(
    *, path: Path, data: np.ndarray, tile: Tile, pixel_size_m: float, spec: ModalitySpec, labels: list[str]
) -> None:
    t, c, h, w = data.shape
    # 10/20/40 m tiles are 256/128/64 px: one GeoTIFF tile each (a multiple of 16, as GeoTIFF needs)
    profile = dict(driver="GTiff", width=w, height=h, count=t * c, dtype=data.dtype.name,
                   crs=f"EPSG:{tile.epsg}", transform=tile.transform(pixel_size_m=pixel_size_m),
                   nodata=spec.nodata, compress="deflate", tiled=True,
                   blockxsize=w, blockysize=h)  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.reshape(t * c, h, w))
        for i, label in enumerate(labels, start=1):
            dst.set_band_description(i, label)


def _nodata_value(spec: ModalitySpec) -> float | int | None:
    return float("nan") if spec.nodata == "nan" else spec.nodata  # type: ignore[return-value]


def _write_nc(
    *, path: Path, data: np.ndarray, tile: Tile, pixel_size_m: float, spec: ModalitySpec,
    bands: Sequence[str], sample: Sample,
) -> None:  # fmt: skip
    import rioxarray  # noqa: F401  (registers the ``.rio`` accessor)
    import xarray as xr

    x0, _, _, y1 = tile.bounds
    h, w = data.shape[2:]
    times = [p.start for p in sample.periods] if spec.is_multitemporal else [sample.centre]
    da = xr.DataArray(
        data,
        dims=("time", "band", "y", "x"),
        coords={
            "time": np.array(times, dtype="datetime64[ns]"),
            "band": list(bands),
            "y": y1 - (np.arange(h) + 0.5) * pixel_size_m,  # pixel centres, metres, north first
            "x": x0 + (np.arange(w) + 0.5) * pixel_size_m,
        },
        name="data",
    )
    # CF grid mapping (a ``spatial_ref`` variable with the WKT and GeoTransform, ``grid_mapping`` on
    # ``data``): what GDAL, QGIS and rioxarray read a NetCDF file's CRS from.
    da = da.rio.write_crs(f"EPSG:{tile.epsg}").rio.write_transform(tile.transform(pixel_size_m=pixel_size_m))
    nodata = _nodata_value(spec)
    if nodata is not None:
        da = da.rio.write_nodata(nodata, encoded=True)  # ``_FillValue``: xarray masks it on opening
    ds = da.to_dataset()
    ds.attrs.update(tile_id=tile.id, modality=spec.name, centre_date=sample.centre.isoformat(),
                    crs=f"EPSG:{tile.epsg}", pixel_size_m=pixel_size_m)  # fmt: skip
    try:
        ds.to_netcdf(path)
    except (ValueError, ImportError) as exc:  # xarray: no engine; h5netcdf: no h5py backend
        path.unlink(missing_ok=True)
        raise RuntimeError(
            f"cannot write NetCDF {path.name} ({exc}); install h5netcdf with h5py "
            "(`pip install 'h5netcdf[h5py]'`) or netCDF4, or use --format tif"
        ) from exc


def run_materialise_command(args: argparse.Namespace) -> int:
    """The ``materialise`` subcommand: one tile, every requested modality, files under ``--out``."""
    from olmoearth_data.materialise.context import MaterialiseContext
    from olmoearth_data.materialise.sample import materialise_sample
    from olmoearth_data.stac.retry import RetryPolicy
    from olmoearth_data.stac.search import SearchCache

    tile_indexes: Mapping[str, TileIndexRef] = tile_indexes_from_args(args.tile_index)
    config = CatalogConfig(stac_url=args.stac_url, sign="none" if args.no_sign else "planetary_computer",
                           blob_endpoint=args.blob_endpoint, tile_indexes=dict(tile_indexes),
                           retry=RetryPolicy(attempts=args.retries, backoff_s=args.backoff_s))  # fmt: skip
    sample = Sample(Tile.from_id(args.tile_id), dt.date.fromisoformat(args.date))
    specs = modality_set(args.modalities if "," not in args.modalities else args.modalities.split(","))
    osm = open_osm_dir(args.osm_dir) if args.osm_dir else None
    cache = SearchCache(Path(args.out) / ".search-cache") if args.cache else None
    with MaterialiseContext.open(catalog=config, cache=cache, osm=osm) as context, context.gdal_env():
        result = materialise_sample(index=0, sample=sample, specs=specs, context=context)
    if result.outage is not None:  # a service failed past the retries: nothing to show, say which
        raise RuntimeError(f"{result.outage.describe()}; no file written, try again later")
    for path in write_tile_files(
        result=result, sample=sample, specs=specs, out=Path(args.out), fmt=args.format
    ):
        print(path)
    return 0


def add_materialise_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``materialise`` on the ``olmoearth-data`` sub-parsers."""
    from olmoearth_data.sources import PLANETARY_COMPUTER_STAC_URL

    p = sub.add_parser("materialise", help="materialise one tile into GeoTIFF/NetCDF files to look at")
    p.add_argument("tile_id", metavar="TILE_ID", help="e.g. EPSG:32610_248_-2176")
    p.add_argument("--date", required=True, help="centre date YYYY-MM-DD (the 12 periods surround it)")
    p.add_argument("--modalities", default="default", help="modality set name or comma-separated names")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--format", choices=sorted(FORMAT_ALIASES), default="tif",
                   help="tif/geotiff or nc/netcdf: one file per modality bandset")  # fmt: skip
    p.add_argument("--stac-url", default=PLANETARY_COMPUTER_STAC_URL)
    p.add_argument("--blob-endpoint", default=None, help="Azurite-style endpoint replacing Azure blob hosts")
    p.add_argument("--no-sign", action="store_true", help="do not SAS-sign hrefs (non-PC catalogues)")
    p.add_argument("--osm-dir", default=None, help="extract_osm output folder (openstreetmap_raster)")
    p.add_argument("--tile-index", action="append", type=parse_tile_index, metavar=TILE_INDEX_METAVAR,
                   help=TILE_INDEX_HELP)  # fmt: skip
    p.add_argument("--cache", action="store_true", help="keep a STAC search cache under OUT/.search-cache")
    p.add_argument("--retries", type=int, default=6)
    p.add_argument("--backoff-s", type=float, default=1.0)
    p.set_defaults(func=run_materialise_command)
