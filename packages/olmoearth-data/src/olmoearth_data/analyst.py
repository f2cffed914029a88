"""A corpus sample as an analysis-ready cube, like a stackstac / odc-stac result.

:func:`open_corpus` picks one sample (by tile id, by a lon/lat point inside its tile, or by row) and
returns one bandset of one modality as a **lazy** (dask) ``xarray.DataArray`` with dims
``(time, band, y, x)`` (static modalities: ``(band, y, x)``), map coordinates and a CRS ready for
rioxarray, presence and the missing reason of every period as coordinates, and the product's
scale/offset as attributes. :func:`list_samples` is the corpus's table of samples (which tile ids,
where, when, built or not).

The NDVI series of one tile, month by month::

    s2 = open_corpus("data/demo/default.zarr", tile_id="EPSG:32610_248_-2176", mask_nodata=True)
    nir, red = s2.sel(band="B08"), s2.sel(band="B04")
    ndvi = ((nir - red) / (nir + red)).mean(["y", "x"])  # one value per month, NaN where absent
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the ``.rio`` accessor)
import xarray as xr

from olmoearth_data.cube.layout import MAP_COORDS
from olmoearth_data.missing import MissingReason

#: Physical scale of products stored as scaled integers without CF attributes of their own, as
#: ``modality → (scale_factor, add_offset)``: physical = stored × scale_factor + add_offset.
#: Sentinel-2 L2A is reflectance × 10000 (harmonised, docs/corpus-schema.md "Units"); Landsat C2 L2
#: has per-band scales (SR vs thermal) in its attributes and units string instead.
PRODUCT_SCALE: dict[str, tuple[float, float]] = {"sentinel2_l2a": (1e-4, 0.0)}
_REASON_NAMES = {int(r): r.name.lower() for r in MissingReason}


def list_samples(path: Path | str) -> pd.DataFrame:
    """The corpus's samples, one row each (index = sample row): ``tile_id``, ``epsg``, ``lon``/``lat``
    (tile centre, degrees), ``centre_date`` (datetime64) and ``status`` (``pending``/``complete``/
    ``dropped``) with ``status_reason``."""
    root = xr.open_dataset(str(path), engine="zarr").load()
    codes = {int(v): k for k, v in root["status"].attrs.get("codes", {}).items()}
    frame = pd.DataFrame(
        {name: root[name].values for name in ("tile_id", "epsg", "lon", "lat", "centre_date")}
    )
    frame["tile_id"] = [str(t) for t in frame["tile_id"]]
    frame["status"] = [codes.get(int(s), str(int(s))) for s in root["status"].values]
    frame["status_reason"] = [str(r) for r in root["status_reason"].values]
    frame.index.name = "sample"
    return frame


def _sample_row(
    samples: pd.DataFrame,
    *,
    sample: int | None,
    tile_id: str | None,
    lon: float | None,
    lat: float | None,
    centre_date: str | dt.date | None,
) -> int:
    """The row of the one sample the arguments name (exactly one way of naming it)."""
    given = [sample is not None, tile_id is not None, lon is not None or lat is not None]
    if sum(given) != 1:
        raise ValueError("name one sample: sample=ROW, tile_id='EPSG:…', or lon=…, lat=… (degrees)")
    if sample is not None:
        if not 0 <= sample < len(samples):
            raise IndexError(f"sample {sample} out of range: the corpus holds samples 0..{len(samples) - 1}")
        return int(sample)
    if tile_id is None:
        if lon is None or lat is None:
            raise ValueError("give both lon and lat (degrees)")
        from olmoearth_data.grid import tile_for_lonlat

        tile_id = tile_for_lonlat(lon=lon, lat=lat).id
    rows = samples.index[samples["tile_id"] == tile_id]
    if centre_date is not None:
        rows = rows[samples.loc[rows, "centre_date"] == pd.Timestamp(centre_date)]
    if len(rows) == 0:
        where = f"point ({lon}, {lat}) in tile {tile_id}" if lon is not None else f"tile {tile_id}"
        raise KeyError(f"no sample of {where} in the corpus (list_samples() shows its {len(samples)} tiles)")
    if len(rows) > 1:
        dates = ", ".join(str(d)[:10] for d in samples.loc[rows, "centre_date"])
        raise ValueError(f"tile {tile_id} has {len(rows)} samples (centre dates {dates}): give centre_date")
    return int(rows[0])


def _bandset_name(tree_attrs: dict[str, Any], modality: str, bandset: str | None) -> str:
    from olmoearth_data.modalities import registry_from_dict

    specs = {s.name: s for s in registry_from_dict(tree_attrs["olmoearth"]["modalities"])}
    if modality not in specs:
        raise KeyError(f"corpus has no modality {modality!r}; it holds {sorted(specs)}")
    names = [bs.name for bs in specs[modality].bandsets]
    if bandset is None:
        return names[0]
    if bandset not in names:
        raise KeyError(f"modality {modality} has no bandset {bandset!r}; it has {names}")
    return bandset


def open_corpus(
    path: Path | str,
    *,
    modality: str = "sentinel2_l2a",
    bandset: str | None = None,
    tile_id: str | None = None,
    lon: float | None = None,
    lat: float | None = None,
    sample: int | None = None,
    centre_date: str | dt.date | None = None,
    mask_nodata: bool = False,
) -> xr.DataArray:
    """One sample's bandset as a lazy, georeferenced DataArray.

    Name the sample by ``tile_id`` (plus ``centre_date`` when the corpus holds the tile at several
    dates), by a point ``lon``/``lat`` (degrees) inside its tile, or by row ``sample``. ``bandset`` is
    the bandset name (``"10m"``, ``"20m"``…; default the modality's first, finest one).

    Returns dims ``(time, band, y, x)`` for monthly modalities — ``time`` is each period's start
    (datetime64), with coordinates ``time_end`` (exclusive), ``present`` (bool) and ``missing_reason``
    (``"present"``, ``"no_items"``, ``"all_nodata"``, ``"read_failed"``, ``"outside_coverage"``,
    ``"not_built"``) along ``time`` — or ``(band, y, x)`` for static ones (``present`` and
    ``missing_reason`` scalar). ``x``/``y`` are pixel-centre map coordinates (m) in the tile's UTM/UPS
    CRS (``.rio.crs``), ``y`` decreasing. Values are dask-backed, as stored (dtype of the modality)
    unless ``mask_nodata``: then float32 with NaN where the pixel is nodata (every band equal to the
    bandset's nodata) or the period is absent. Attributes: ``units``, ``nodata``, ``pixel_size_m``,
    and ``scale_factor``/``add_offset`` where the product has a physical scale (Sentinel-2:
    reflectance = value × 1e-4).
    """
    path = str(path)
    root = xr.open_dataset(path, engine="zarr")
    row = _sample_row(list_samples(path), sample=sample, tile_id=tile_id, lon=lon, lat=lat,
                      centre_date=centre_date)  # fmt: skip
    name = _bandset_name(root.attrs, modality, bandset)
    node = xr.open_dataset(path, group=f"{modality}/{name}", engine="zarr", chunks={})
    flags = xr.open_dataset(path, group=modality, engine="zarr", chunks={}).isel(sample=row).load()
    data = node["data"].isel(sample=row)
    epsg = int(root["epsg"].values[row])
    reason = np.vectorize(lambda c: _REASON_NAMES.get(int(c), str(int(c))), otypes=[object])(
        flags["reason"].values
    )
    coords: dict[str, Any] = {
        "x": ("x", data["easting"].values),
        "y": ("y", data["northing"].values),
        "tile_id": str(root["tile_id"].values[row]),
        "centre_date": root["centre_date"].values[row],
    }
    if "period" in data.dims:
        data = data.rename(period="time")
        coords |= {
            "time": ("time", root["period_start"].values[row]),
            "time_end": ("time", root["period_end"].values[row]),
            "present": ("time", flags["present"].values),
            "missing_reason": ("time", reason),
        }
    else:
        coords |= {"present": bool(flags["present"].values), "missing_reason": reason.item()}
    da = data.drop_vars(MAP_COORDS, errors="ignore").assign_coords(coords)
    nodata = _nodata(data.attrs)
    if mask_nodata:
        da = _masked(da, nodata=nodata)
        da.attrs.pop("nodata", None)  # nodata is NaN now (rio.nodata below)
    da.name = f"{modality}/{name}"
    if modality in PRODUCT_SCALE and "scale_factor" not in da.attrs:
        da.attrs["scale_factor"], da.attrs["add_offset"] = PRODUCT_SCALE[modality]
    da = da.rio.set_spatial_dims(x_dim="x", y_dim="y").rio.write_crs(f"EPSG:{epsg}")
    if mask_nodata:
        return da.rio.write_nodata(np.nan, encoded=False)
    return da if nodata is None else da.rio.write_nodata(nodata, encoded=False)


def _nodata(attrs: dict[str, Any]) -> float | int | None:
    value = attrs.get("nodata")
    if value is None:
        return None
    return float("nan") if value == "nan" else value


def _masked(da: xr.DataArray, *, nodata: float | int | None) -> xr.DataArray:
    """float32, NaN where every band is nodata or the period is absent (lazy)."""
    values = da.astype(np.float32)
    if nodata is None:
        valid = xr.ones_like(values.isel(band=0), dtype=bool)
    elif isinstance(nodata, float) and np.isnan(nodata):
        valid = values.notnull().any("band")
    else:
        valid = (da != nodata).any("band")
    return values.where(valid & da["present"])
