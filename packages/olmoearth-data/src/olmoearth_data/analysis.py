"""Analyst helpers: a corpus as an xarray DataTree, and one sample's bandset as a georeferenced DataArray.

For analysis prefer :func:`olmoearth_data.analyst.open_corpus`: lazy (dask), ``time`` as the dimension,
selection by tile id or lon/lat point, nodata masking, presence and missing reasons as coordinates.

The cube stores pixels by index (``y``/``x``); map coordinates differ per sample (each tile has its own
UTM zone and corner), so they are attached here, per sample, from the root variables ``epsg``, ``x0``,
``y0`` and the bandset's ``pixel_size_m`` (docs/corpus-schema.md, "Where CRS and transform live").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the ``.rio`` accessor)
import xarray as xr

from olmoearth_data.cube.layout import MAP_COORDS


def open_corpus(path: Path | str, **kwargs: Any) -> xr.DataTree:
    """Open a corpus lazily as a DataTree: root variables at ``/``, one node per ``modality/bandset``.

    ``kwargs`` go to :func:`xarray.open_datatree` (e.g. ``chunks={}`` for dask arrays). Values are the
    stored ones (uint16 reflectance × 10000, dB, …); CF ``scale_factor`` is applied where a bandset has one.
    """
    return xr.open_datatree(str(path), engine="zarr", **kwargs)


def _nodata(attrs: dict[str, Any]) -> float | int | None:
    value = attrs.get("nodata")
    if value is None:
        return None
    return float("nan") if value == "nan" else value


def sample_bandset(
    path_or_tree: Path | str | xr.DataTree, *, sample: int, modality: str, bandset: str
) -> xr.DataArray:
    """One sample's bandset with map coordinates and a CRS, ready for rioxarray.

    Returns dims ``(period, band, y, x)`` for monthly modalities (``period`` labelled by the period's
    start as ``datetime64``, ``period_end`` as a second coordinate) or ``(band, y, x)`` for static ones;
    dtype as stored. ``x``/``y`` are pixel-centre map coordinates in metres in the tile's UTM/UPS CRS
    (``.rio.crs`` = ``EPSG:<epsg>``), ``y`` decreasing (row 0 = north), so ``.rio.transform()`` is
    ``(px, 0, x0, 0, −px, y0)``. ``.rio.nodata`` is the bandset's nodata (NaN for float, None when every
    value is valid). ``bandset`` is the bandset name, e.g. ``"10m"``.
    """
    tree = path_or_tree if isinstance(path_or_tree, xr.DataTree) else open_corpus(path_or_tree)
    node = f"{modality}/{bandset}"
    try:
        # the CF map coordinates become x/y below (a reprojection must not carry the old ones along)
        data = tree[node].dataset["data"].isel(sample=sample).drop_vars(MAP_COORDS, errors="ignore")
    except KeyError:
        raise KeyError(f"corpus has no bandset {node!r}; modalities: {sorted(tree.children)}") from None
    root = tree.dataset
    px = float(data.attrs["pixel_size_m"])
    x0, y0 = float(root["x0"].values[sample]), float(root["y0"].values[sample])
    epsg = int(root["epsg"].values[sample])
    n_y, n_x = data.sizes["y"], data.sizes["x"]
    coords: dict[str, Any] = {
        "x": ("x", x0 + (np.arange(n_x) + 0.5) * px),
        "y": ("y", y0 - (np.arange(n_y) + 0.5) * px),
        "tile_id": str(root["tile_id"].values[sample]),
    }
    if "period" in data.dims:
        coords["period"] = ("period", root["period_start"].values[sample])
        coords["period_end"] = ("period", root["period_end"].values[sample])
    da = data.assign_coords(coords).load()
    da.name = f"{modality}/{bandset}"
    da = da.rio.set_spatial_dims(x_dim="x", y_dim="y").rio.write_crs(f"EPSG:{epsg}")
    nodata = _nodata(data.attrs)
    if nodata is not None:
        da = da.rio.write_nodata(nodata, encoded=False)
    return da
