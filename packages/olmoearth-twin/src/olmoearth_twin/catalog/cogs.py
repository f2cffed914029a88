"""Cloud-optimised GeoTIFF writing (GDAL's COG driver: tiled, DEFLATE, overviews, nodata 0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine


def write_cog(
    *, path: Path, data: np.ndarray, epsg: int, transform: Affine, nodata: float | None = 0
) -> None:
    """Write ``data`` (``[H, W]`` or ``[bands, H, W]``, any GDAL dtype) as a COG with ``nodata``.

    512 px blocks (GDAL's COG default; a 256 px tile window touches at most four), DEFLATE
    with the horizontal-differencing predictor: the smallest files for the real-texture bands, which
    keeps the default catalogue under 200 MB.
    """
    arr = data[None] if data.ndim == 2 else data
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = {
        "driver": "COG",
        "width": arr.shape[2],
        "height": arr.shape[1],
        "count": arr.shape[0],
        "dtype": arr.dtype.name,
        "crs": f"EPSG:{epsg}",
        "transform": transform,
        "nodata": nodata,
        "compress": "DEFLATE",
        # Floating-point predictor for float data (S1, cop-dem), integer differencing otherwise.
        "predictor": 3 if arr.dtype.kind == "f" else 2,
        "blocksize": 512,
        "overview_resampling": "nearest",
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(arr)
