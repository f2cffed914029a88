"""Create a corpus store with every array's metadata, per docs/corpus-schema.md.

The store is created once, up front: root per-sample coordinates are written eagerly (they come from
the sample table), every other array is created empty (fill value = nodata). Build tasks then fill
whole shards (``writer.py``). Arrays are created through xarray so ``xr.open_datatree`` reads them
with their dimension names and coordinates.

Creation is atomic: the skeleton (groups, arrays, ``status``) is written under a hidden sibling name
(``.<name>.creating-<id>``) and renamed to ``path`` once complete, so a full disk or a Ctrl-C during
creation never leaves a store that cannot be opened or resumed; the next creation removes such
leftovers. A full disk raises :class:`~olmoearth_data.cube.disk.DiskFullError` with a one-line message.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, BloscShuffle, Crc32cCodec

from olmoearth_data.cube.disk import DiskFullError, disk_full_message, is_disk_full
from olmoearth_data.cube.staging import discard_staging
from olmoearth_data.missing import MissingReason, SampleStatus
from olmoearth_data.modalities import NUM_PERIODS, BandSet, ModalitySpec, registry_to_dict
from olmoearth_data.samples import Sample

SCHEMA_VERSION = "olmoearth.corpus/1"
#: blosc-zstd with bit shuffle: small integers of reflectance compress well and decode at GB/s.
DATA_COMPRESSOR = BloscCodec(cname="zstd", clevel=3, shuffle=BloscShuffle.bitshuffle)
#: Inner-chunk bytes codecs of every data array: blosc, then a crc32c of the compressed bytes, so a
#: damaged chunk is detected on read (olmoearth_data.shardfile; the shard index has its own crc32c).
DATA_CODECS = (DATA_COMPRESSOR, Crc32cCodec())


@dataclass(frozen=True)
class CorpusLayout:
    """Shapes and sharding of a corpus: ``n_samples`` rows in shards of ``samples_per_shard``."""

    n_samples: int
    samples_per_shard: int

    def __post_init__(self) -> None:
        if self.samples_per_shard < 1:
            raise ValueError("samples_per_shard must be ≥ 1")

    @property
    def n_shards(self) -> int:
        return -(-self.n_samples // self.samples_per_shard)

    def shard_range(self, shard: int) -> tuple[int, int]:
        """Half-open sample range ``[start, stop)`` of shard ``shard``."""
        if not 0 <= shard < self.n_shards:
            raise IndexError(f"shard {shard} out of range 0..{self.n_shards - 1}")
        start = shard * self.samples_per_shard
        return start, min(start + self.samples_per_shard, self.n_samples)


@dataclass(frozen=True)
class Chunking:
    """Inner chunk shape of every ``data`` array: the unit one loader read decodes.

    Monthly bandsets are chunked ``[1 sample, monthly_periods, all bands, s, s]``, static ones
    ``[1 sample, all bands, s, s]``, with the side ``s`` in *stored* pixels looked up by pixel size in
    ``monthly_px`` / ``static_px`` (``(pixel size m, side px)`` pairs; other sizes: ``other_px``) and
    clamped to the tile. Shards are not affected: a shard is always ``samples_per_shard`` samples ×
    the whole tile × every period, so every build task still owns whole shards.

    The defaults are measured for the training sampler's crops (1–96 px at 10 m, up to 12 periods;
    ``benchmarks/bench_chunking.py`` → ``results/chunking_cpu.json``, docs/corpus-schema.md
    "Chunking and sharding"): all 12 periods in one chunk, 320 m sides at 10/20 m (32/16 px), 16 px
    at 40 m, 64 px for static 10 m maps and 32 px for the 30-band 2.5 m OSM raster — each the fastest
    measured for its group or within noise of it, 2–100× faster than whole-tile, one-period chunks.
    """

    monthly_periods: int = 12
    monthly_px: tuple[tuple[float, int], ...] = ((10.0, 32), (20.0, 16), (40.0, 16))
    static_px: tuple[tuple[float, int], ...] = ((10.0, 64), (2.5, 32))
    other_px: int = 32

    def __post_init__(self) -> None:
        for size_m, side in (*self.monthly_px, *self.static_px, (None, self.other_px)):
            if side < 1 or side & (side - 1):
                raise ValueError(
                    f"chunk side {side} px (pixel size {size_m} m) must be a power of two: tiles are 2ⁿ px"
                )
        if self.monthly_periods < 1 or NUM_PERIODS % self.monthly_periods:
            raise ValueError(
                f"monthly_periods must divide {NUM_PERIODS} (a shard holds every period), "
                f"got {self.monthly_periods}"
            )

    @classmethod
    def uniform(cls, *, side_px: int, monthly_periods: int = 12) -> Chunking:
        """Every bandset chunked ``side_px`` × ``side_px`` (clamped to its tile)."""
        return cls(monthly_periods=monthly_periods, monthly_px=(), static_px=(), other_px=side_px)

    def side(self, spec: ModalitySpec, bs: BandSet) -> int:
        """The chunk side of ``spec``'s bandset ``bs`` in stored pixels."""
        table = dict(self.monthly_px if spec.is_multitemporal else self.static_px)
        return min(table.get(bs.pixel_size_m, self.other_px), bs.pixels_per_tile)

    def chunks(self, spec: ModalitySpec, bs: BandSet) -> tuple[int, ...]:
        """The inner chunk shape of ``spec``'s bandset ``bs`` (dims as :func:`data_dims`)."""
        s = self.side(spec, bs)
        if spec.is_multitemporal:
            return (1, self.monthly_periods, len(bs.bands), s, s)
        return (1, len(bs.bands), s, s)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, stored in the corpus's root attributes."""
        return {
            "monthly_periods": self.monthly_periods,
            "monthly_px": [list(p) for p in self.monthly_px],
            "static_px": [list(p) for p in self.static_px],
            "other_px": self.other_px,
        }


def nodata_fill(spec: ModalitySpec) -> float | int:
    """The stored fill value of a modality: its nodata, NaN for float, 0 when every value is valid."""
    if spec.nodata is None:
        return 0
    if spec.nodata == "nan":
        return float("nan")
    return spec.nodata


def empty_arrays(spec: ModalitySpec, *, n_periods: int) -> dict[str, np.ndarray]:
    """Bandset name → ``[n_periods, C, H, W]`` filled with the modality's nodata, in its storage dtype."""
    fill = nodata_fill(spec)
    return {
        bs.name: np.full((n_periods, len(bs.bands), bs.pixels_per_tile, bs.pixels_per_tile), fill, spec.dtype)
        for bs in spec.bandsets
    }


def data_dims(spec: ModalitySpec) -> tuple[str, ...]:
    return ("sample", "period", "band", "y", "x") if spec.is_multitemporal else ("sample", "band", "y", "x")


#: Per-sample georeferencing written into every bandset group, so that plain ``xr.open_datatree`` finds
#: map coordinates without knowing the corpus's internals (``x0``, ``y0``, ``pixel_size_m``, ``epsg``).
#: Tiles lie in different UTM zones, so each sample has its own CRS and eastings: CF's 1-D ``x``/``y``
#: dimension coordinates cannot hold them; 2-D ``(sample, x)`` coordinates and a per-sample CRS can.
MAP_COORDS = ("easting", "northing", "spatial_ref")


def map_coordinates(
    *, x0: np.ndarray, y0: np.ndarray, epsg: np.ndarray, pixel_size_m: float, n_px: int
) -> dict[str, tuple[tuple[str, ...], np.ndarray, dict[str, str]]]:
    """CF coordinates of a bandset's pixel centres for every sample.

    ``x0``/``y0``: float64 ``[sample]`` tile top-left corner (m); ``epsg``: int ``[sample]``. Returns
    ``easting`` float64 ``[sample, x]`` = ``x0 + (i + 0.5)·px``, ``northing`` float64 ``[sample, y]`` =
    ``y0 − (j + 0.5)·px`` (row 0 = north) and ``spatial_ref`` str ``[sample]`` = ``"EPSG:<code>"``, each
    as ``(dims, values, attrs)``.
    """
    centres = (np.arange(n_px, dtype=np.float64) + 0.5) * pixel_size_m
    return {
        "easting": (("sample", "x"), np.asarray(x0, np.float64)[:, None] + centres,
                    {"standard_name": "projection_x_coordinate", "units": "m",
                     "long_name": "pixel-centre easting in the sample's CRS (spatial_ref)"}),
        "northing": (("sample", "y"), np.asarray(y0, np.float64)[:, None] - centres,
                     {"standard_name": "projection_y_coordinate", "units": "m",
                      "long_name": "pixel-centre northing in the sample's CRS (spatial_ref)"}),
        "spatial_ref": (("sample",), np.array([f"EPSG:{int(e)}" for e in epsg], dtype=object),
                        {"long_name": "CRS of the sample's tile (UTM or UPS; differs between samples)"}),
    }  # fmt: skip


def _bandset_dataset(
    spec: ModalitySpec, bs: BandSet, layout: CorpusLayout, chunking: Chunking, georef: dict[str, np.ndarray]
) -> tuple[xr.Dataset, dict]:
    n = bs.pixels_per_tile
    time = (NUM_PERIODS,) if spec.is_multitemporal else ()
    shape = (layout.n_samples, *time, len(bs.bands), n, n)
    chunks = chunking.chunks(spec, bs)
    shards = (layout.samples_per_shard, *time, len(bs.bands), n, n)
    lazy = da.zeros(shape, dtype=spec.dtype, chunks=shards)
    data = xr.DataArray(lazy, dims=data_dims(spec))
    data.attrs.update(
        units=spec.units,
        nodata=None if spec.nodata is None else (str(spec.nodata) if spec.nodata == "nan" else spec.nodata),
        pixel_size_m=bs.pixel_size_m,
        bands=list(bs.bands),
    )
    coords = map_coordinates(**georef, pixel_size_m=bs.pixel_size_m, n_px=n)
    ds = xr.Dataset({"data": data}, coords={"band": ("band", np.array(bs.bands, dtype=object)), **coords})
    fill = nodata_fill(spec)
    encoding = {"data": {"chunks": chunks, "shards": shards, "fill_value": fill, "compressors": DATA_CODECS}}
    # Written once, eagerly, at creation: one chunk per shard of samples, like the root variables.
    encoding.update(
        {name: {"chunks": (layout.samples_per_shard, *ds[name].shape[1:])} for name in MAP_COORDS}
    )
    return ds, encoding


def _presence_dataset(spec: ModalitySpec, layout: CorpusLayout) -> tuple[xr.Dataset, dict]:
    dims = ("sample", "period") if spec.is_multitemporal else ("sample",)
    shape = (layout.n_samples, NUM_PERIODS) if spec.is_multitemporal else (layout.n_samples,)
    shards = (layout.samples_per_shard, *shape[1:])
    present = xr.DataArray(da.zeros(shape, dtype=bool, chunks=shards), dims=dims)
    reason = xr.DataArray(da.zeros(shape, dtype=np.uint8, chunks=shards), dims=dims)
    reason.attrs["codes"] = MissingReason.table()
    ds = xr.Dataset({"present": present, "reason": reason})
    enc = {"chunks": shards, "shards": shards}
    return ds, {
        "present": {**enc, "fill_value": False},
        "reason": {**enc, "fill_value": int(MissingReason.NOT_BUILT)},
    }


def _root_dataset(samples: Sequence[Sample], layout: CorpusLayout) -> tuple[xr.Dataset, dict]:
    n = len(samples)
    lonlat = np.array([s.tile.centre_lonlat for s in samples], dtype=np.float64).reshape(n, 2)
    starts = np.array([[p.start for p in s.periods] for s in samples], dtype="datetime64[D]").reshape(
        n, NUM_PERIODS
    )
    ends = np.array([[p.end for p in s.periods] for s in samples], dtype="datetime64[D]").reshape(
        n, NUM_PERIODS
    )
    coords = {
        "tile_id": ("sample", np.array([s.tile.id for s in samples], dtype=object)),
        "epsg": ("sample", np.array([s.tile.epsg for s in samples], dtype=np.int32)),
        "col": ("sample", np.array([s.tile.col for s in samples], dtype=np.int32)),
        "row": ("sample", np.array([s.tile.row for s in samples], dtype=np.int32)),
        "x0": ("sample", np.array([s.tile.bounds[0] for s in samples], dtype=np.float64)),
        "y0": ("sample", np.array([s.tile.bounds[3] for s in samples], dtype=np.float64)),
        "lon": ("sample", lonlat[:, 0]),
        "lat": ("sample", lonlat[:, 1]),
        "centre_date": ("sample", np.array([s.centre for s in samples], dtype="datetime64[D]")),
        "period_start": (("sample", "period"), starts),
        "period_end": (("sample", "period"), ends),
    }
    shards = (layout.samples_per_shard,)
    status = xr.DataArray(da.zeros(n, dtype=np.int8, chunks=shards), dims=("sample",))
    status.attrs["codes"] = {s.name.lower(): int(s) for s in SampleStatus}
    reason = xr.DataArray(np.full(n, "", dtype=object), dims=("sample",))
    ds = xr.Dataset({"status": status, "status_reason": reason}, coords=coords)
    time_enc = {"units": "days since 1970-01-01", "dtype": "int32"}
    encoding = {
        "status": {"chunks": shards, "shards": shards, "fill_value": int(SampleStatus.PENDING)},
        "status_reason": {"chunks": shards, "shards": shards},
        "centre_date": time_enc,
        "period_start": time_enc,
        "period_end": time_enc,
    }
    return ds, encoding


def create_corpus(
    path: Path | str,
    *,
    samples: Sequence[Sample],
    specs: Sequence[ModalitySpec],
    samples_per_shard: int,
    chunking: Chunking | None = None,
    attrs: dict[str, Any] | None = None,
) -> CorpusLayout:
    """Create the store at ``path`` with all metadata; refuses to overwrite an existing store.

    ``chunking`` sets the data arrays' inner chunks (default :class:`Chunking`, the measured choice);
    shards are ``samples_per_shard`` samples × the whole tile × every period whatever it is.
    """
    chunking = Chunking() if chunking is None else chunking
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"corpus {path} already exists; resume it or remove it first")
    if not samples:
        raise ValueError("a corpus needs at least one sample")
    layout = CorpusLayout(len(samples), samples_per_shard)
    remove_staging(path, kind="creating")
    staging = staging_path(path, kind="creating")
    try:
        _write_skeleton(staging, samples=samples, specs=specs, layout=layout, chunking=chunking, attrs=attrs)
        os.rename(staging, path)  # atomic: the store appears complete or not at all
    except BaseException as exc:
        discard_staging(staging)  # after zarr's in-flight writes: they could recreate it
        if is_disk_full(exc):
            raise DiskFullError(disk_full_message(path=path, doing="creating the corpus", exc=exc)) from exc
        raise
    return layout


def staging_path(path: Path | str, *, kind: str) -> Path:
    """A fresh hidden sibling of ``path`` to build a skeleton part in (``.<name>.<kind>-<id>``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def remove_staging(path: Path | str, *, kind: str) -> None:
    """Remove the leftovers of interrupted :func:`staging_path` folders of ``path`` (a killed build's)."""
    path = Path(path)
    for old in path.parent.glob(f".{path.name}.{kind}-*"):
        shutil.rmtree(old, ignore_errors=True)


def _write_skeleton(
    path: Path,
    *,
    samples: Sequence[Sample],
    specs: Sequence[ModalitySpec],
    layout: CorpusLayout,
    chunking: Chunking,
    attrs: dict[str, Any] | None,
) -> None:
    samples_per_shard = layout.samples_per_shard
    common = {"mode": "a", "compute": False, "zarr_format": 3, "consolidated": False}
    root, enc = _root_dataset(samples, layout)
    root.attrs["olmoearth"] = {
        "schema_version": SCHEMA_VERSION,
        "modalities": registry_to_dict(tuple(specs)),
        "samples_per_shard": samples_per_shard,
        "chunking": chunking.to_dict(),
        **(attrs or {}),
    }
    root.to_zarr(path, encoding=enc, **{**common, "mode": "w"})
    georef = {name: root[name].values for name in ("x0", "y0", "epsg")}
    for spec in specs:
        write_modality_skeleton(path, spec=spec, layout=layout, chunking=chunking, georef=georef)


def write_modality_skeleton(
    path: Path | str,
    *,
    spec: ModalitySpec,
    layout: CorpusLayout,
    chunking: Chunking,
    georef: dict[str, np.ndarray],
) -> None:
    """Create ``spec``'s group (``present``, ``reason``, one ``data`` array per bandset with its
    :func:`map_coordinates`) in the store at ``path``, every data array empty.

    ``georef``: the root's per-sample ``x0``, ``y0`` (float64, m) and ``epsg`` (int) arrays."""
    common = {"mode": "a", "compute": False, "zarr_format": 3, "consolidated": False}
    ds, enc = _presence_dataset(spec, layout)
    ds.attrs.update(modality=spec.name, role=spec.role.value, temporal=spec.temporal.value)
    ds.to_zarr(path, group=spec.name, encoding=enc, **common)
    for bs in spec.bandsets:
        ds, enc = _bandset_dataset(spec, bs, layout, chunking, georef)
        ds.to_zarr(path, group=f"{spec.name}/{bs.name}", encoding=enc, **common)


def open_layout(path: Path | str) -> tuple[CorpusLayout, dict[str, Any]]:
    """The layout and the ``olmoearth`` root attributes of an existing corpus."""
    group = zarr.open_group(str(path), mode="r")
    meta = dict(group.attrs["olmoearth"])
    return CorpusLayout(group["status"].shape[0], int(meta["samples_per_shard"])), meta


def consolidate(path: Path | str) -> None:
    """Consolidate metadata once, at the end of a build (readers on object stores open one document)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(str(path))
