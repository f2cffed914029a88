"""GDAL's configuration for every remote read of a build, in one place.

:data:`BASE_OPTIONS` is what every reader needs (no directory listing on open, bounded retries and
timeouts, only raster extensions probed). :data:`CLOUD_COG_OPTIONS` adds the usual cloud-COG settings,
chosen by ``make bench-network`` (docs/network.md):

* ``GDAL_INGESTED_BYTES_AT_OPEN``: the first request of an open fetches 64 KiB, enough for a COG's
  header and tile index (Sentinel-2/Landsat COGs on Planetary Computer), instead of 16 KiB followed by
  more header requests;
* ``GDAL_HTTP_MERGE_CONSECUTIVE_RANGES``: adjacent tiles of one read go out as one range request;
* ``GDAL_HTTP_MULTIPLEX``: several ranges over one HTTP/2 connection where the server speaks it;
* ``CPL_VSIL_CURL_CACHE_SIZE``: ``/vsicurl/``'s byte cache, shared by the threads of a worker,
  128 MiB (default 16) for a worker reading ~16 items at once, within the 2 GB worker budget. GDAL's
  block cache (``GDAL_CACHEMAX``) keeps its default (5 % of RAM): each block is read once per open.

GDAL options are per thread in rasterio: a thread of a worker's read pool enters :func:`gdal_env`
itself (:class:`~olmoearth_data.materialise.context.MaterialiseContext` does), and odc-stac carries the
calling thread's options into its own pool.
"""

from __future__ import annotations

from collections.abc import Mapping

import rasterio

from olmoearth_data.stac.retry import RetryPolicy

#: Every reader: no directory listings on open, bounded retries and timeouts, raster extensions only.
BASE_OPTIONS: dict[str, str] = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MAX_RETRY": "5",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    "GDAL_HTTP_TIMEOUT": "60",
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF,.xml,.jp2",
    "VSI_CACHE": "TRUE",
}

#: Cloud-COG settings on top of :data:`BASE_OPTIONS` (see the module docstring).
CLOUD_COG_OPTIONS: dict[str, str] = {
    "GDAL_INGESTED_BYTES_AT_OPEN": str(64 * 1024),
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "CPL_VSIL_CURL_CACHE_SIZE": str(128 * 2**20),
}


def retry_options(retry: RetryPolicy | None) -> dict[str, str]:
    """GDAL's per-request HTTP retries following ``retry`` (empty for None)."""
    if retry is None:
        return {}
    return {
        "GDAL_HTTP_MAX_RETRY": str(max(retry.attempts - 1, 0)),
        "GDAL_HTTP_RETRY_DELAY": f"{retry.backoff_s:g}",
        "GDAL_HTTP_TIMEOUT": f"{retry.timeout_s:g}",
    }


def gdal_options(*, retry: RetryPolicy | None = None, cloud: bool = True) -> dict[str, str]:
    """The options of a build's reads: base, cloud-COG (``cloud``), then ``retry``'s."""
    return {**BASE_OPTIONS, **(CLOUD_COG_OPTIONS if cloud else {}), **retry_options(retry)}


def gdal_env(options: Mapping[str, str] | None = None) -> rasterio.Env:
    """A ``rasterio.Env`` of ``options`` (default: :func:`gdal_options`) for the calling thread."""
    return rasterio.Env(**(dict(options) if options is not None else gdal_options()))
