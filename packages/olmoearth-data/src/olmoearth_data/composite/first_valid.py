"""Load items into a tile's pixel grid with odc-stac and merge them per pixel, first valid wins.

A pixel of an item is *valid* when any band of the bandset differs from nodata (for float data:
is not NaN). The output starts empty (all nodata) and each item, in order, fills only pixels that
are still empty — the reference's FIRST_VALID compositing (data spec §4.2 step 4).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import odc.stac
import pystac
import rasterio
from odc.geo.geobox import GeoBox

from olmoearth_data.composite.gdal_cache import clear_remote_cache
from olmoearth_data.composite.read_errors import (
    check_asset_crs,
    error_text,
    failing_hrefs,
    gdal_retry_options,
    is_transient,
)
from olmoearth_data.stac.catalog import RetryPolicy

log = logging.getLogger(__name__)


class RedactQueryStrings(logging.Filter):
    """Rewrites a record's message without URL query strings: odc-stac's loader logs a failed read
    with the *signed* URL (SAS ``sig=…``), and a log must never carry a credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = _redact(message), None
        return True


#: Third-party loggers that print the URLs they open (odc-stac's rasterio reader).
for _name in (
    "odc.loader._rio",
    "rasterio",
    "rasterio._env",
    "rasterio._err",
    "rasterio._base",
    "rasterio._io",
):
    logging.getLogger(_name).addFilter(RedactQueryStrings())


def valid_mask(array: np.ndarray, *, nodata: float | int | None) -> np.ndarray:
    """Pixels ``[H, W]`` of a ``[C, H, W]`` stack where any band holds data."""
    if nodata is None:
        return np.ones(array.shape[1:], dtype=bool)
    if isinstance(nodata, float) and np.isnan(nodata):
        return ~np.all(np.isnan(array), axis=0)
    return ~np.all(array == nodata, axis=0)


def load_item(
    item: pystac.Item,
    *,
    assets: Sequence[str],
    geobox: GeoBox,
    dtype: str,
    nodata: float | int,
    resampling: str,
    sign: Callable[[str], str],
) -> np.ndarray:
    """One item's assets resampled into ``geobox``: ``[C, H, W]`` of ``dtype``, ``nodata`` where empty.

    ``sign`` is applied to each href by odc-stac right before it opens the file, so no signed URL
    outlives the read. An asset the item lacks (an optional one: the source search dropped items
    missing required assets) reads as all ``nodata``. Raises
    :class:`~olmoearth_data.composite.read_errors.BadAssetError` when a file's CRS contradicts the
    one its item declares (see :func:`~olmoearth_data.composite.read_errors.check_asset_crs`).
    """
    present = [a for a in assets if a in item.assets]
    out = np.full((len(assets), *geobox.shape), nodata, dtype=dtype)
    if not present:
        return out
    check_asset_crs(item, assets=present, sign=sign)
    ds = odc.stac.load(
        [item],
        bands=present,
        geobox=geobox,
        dtype=dtype,
        nodata=nodata,
        resampling=resampling,
        groupby="id",
        patch_url=sign,
        chunks=None,
        fail_on_error=True,
        pool=1,
    )
    for i, a in enumerate(assets):
        if a in item.assets:
            out[i] = ds[a].values[0]
    return out


@dataclass
class MergeResult:
    """A first-valid composite and which items contributed."""

    data: np.ndarray  # [C, H, W]
    used_item_ids: list[str]
    failed_item_ids: list[str]

    @property
    def empty(self) -> bool:
        return not self.used_item_ids


def first_valid(
    items: Sequence[pystac.Item],
    *,
    assets: Sequence[str],
    geobox: GeoBox,
    dtype: str,
    nodata: float | int,
    resampling: str,
    sign: Callable[[str], str],
    transform_item: Callable[[pystac.Item, np.ndarray], np.ndarray] | None = None,
    read_nodata: float | int | None = None,
    retry: RetryPolicy | None = None,
) -> MergeResult:
    """Per-pixel first-valid merge of ``items`` (already in priority order) into ``geobox``.

    ``transform_item(item, data)`` adjusts one item's pixels before merging (e.g. Sentinel-2
    harmonisation). ``read_nodata`` is the files' own nodata when it differs from the output's
    ``nodata`` (Sentinel-1: −32768 in the files, NaN stored): reading with it keeps nodata out of
    the resampling kernel, then those pixels become ``nodata``. An item whose read fails on the network
    is read again with ``retry``'s backoff (None: once) — GDAL retries HTTP status errors itself, with
    the same policy, but not a dropped connection — and then skipped; an item with a bad file (corrupt,
    truncated, CRS contradicting its item) is skipped at once, not retried
    (:mod:`~olmoearth_data.composite.read_errors`). Every skip is logged with the failing asset's
    *unsigned* href. Stops early once every pixel is filled.
    """
    shape = (len(assets), *geobox.shape)
    out = np.full(shape, nodata, dtype=dtype)
    filled = np.zeros(geobox.shape, dtype=bool)
    used: list[str] = []
    failed: list[str] = []
    source_nodata = nodata if read_nodata is None else read_nodata
    load_args = dict(assets=assets, geobox=geobox, dtype=dtype, nodata=source_nodata, resampling=resampling)
    for item in items:
        data = _load_with_retry(item, sign=sign, retry=retry, load_args=load_args)
        if data is None:
            failed.append(item.id)
            continue
        if read_nodata is not None:
            data = np.where(data == read_nodata, np.asarray(nodata, dtype=data.dtype), data)
        if transform_item is not None:
            data = transform_item(item, data)
        valid = valid_mask(data, nodata=nodata)
        take = valid & ~filled
        if take.any():
            out[:, take] = data[:, take]
            filled |= take
            used.append(item.id)
        if filled.all():
            break
    return MergeResult(out, used, failed)


def _load_with_retry(
    item: pystac.Item, *, sign: Callable[[str], str], retry: RetryPolicy | None, load_args: dict
) -> np.ndarray | None:
    """:func:`load_item` retried by ``retry``'s delays while the failure is transient; None (logged,
    unsigned href) when the file is bad or every try failed."""
    delays = retry.delays() if retry is not None else []
    hrefs = [item.assets[a].href for a in load_args["assets"] if a in item.assets]
    for attempt in range(len(delays) + 1):
        try:
            with rasterio.Env(**gdal_retry_options(retry)):
                return load_item(item, sign=sign, **load_args)
        except Exception as exc:  # a bad asset must not sink the tile: retry, then skip the item, say which
            transient = is_transient(exc)
            where = failing_hrefs(exc, hrefs)
            if transient and attempt < len(delays):
                log.info("retrying item %s: read error (%s) for %s", item.id, _redact(str(exc)), where)
                time.sleep(delays[attempt])
                clear_remote_cache()  # else GDAL may answer the retry from a cached "missing file"
                continue
            why = "" if transient else ", bad file: not retried"
            log.warning(
                "skipping item %s: read failed%s (%s) for %s", item.id, why, _redact(_last_line(exc)), where
            )
            return None
    return None


def _last_line(exc: BaseException) -> str:
    """The most specific message of ``exc``'s chain (GDAL's root cause, e.g. the TIFF error)."""
    return error_text(exc).splitlines()[-1]


def _redact(message: str) -> str:
    """Drop query strings (SAS tokens) from an error message before it reaches a log."""
    return re.sub(r"\?[^\s'\"]*", "?<redacted>", message)
