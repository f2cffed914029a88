"""Read one STAC item's assets into a tile grid with odc-stac, retrying what the network broke.

:func:`load_item` is one read; :func:`read_item` wraps it in the run's retry policy and decides, per
failure, whose fault it was (:mod:`~olmoearth_data.composite.read_errors`, :mod:`olmoearth_data.outages`):

* the file's (corrupt, truncated, wrong CRS, HTTP 404/410, an href that is not http(s)): the item is
  skipped at once — ``None``, logged with the *unsigned* href;
* the network's or the service's (resets, timeouts, 429/5xx, a blob host's 401/403): read again after
  the policy's backoff (GDAL's own per-request retries run first, with the same policy); when every try
  failed, :class:`~olmoearth_data.outages.SourceUnavailableError` names the host — the sample stays pending,
  the item is *not* counted as bad;
* the SAS token endpoint's (:mod:`~olmoearth_data.stac.sas` already retried): re-raised at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import odc.stac
import pystac
import rasterio
from odc.geo.geobox import GeoBox

from olmoearth_data.composite.gdal_cache import clear_remote_cache
from olmoearth_data.composite.range_reads import active_reader
from olmoearth_data.composite.read_errors import (
    check_asset_crs,
    error_text,
    failing_hrefs,
    gdal_retry_options,
    is_transient,
)
from olmoearth_data.outages import (
    SourceUnavailableError,
    describe_failure,
    find_outage,
    host_of_url,
    http_status,
)
from olmoearth_data.redact import install_log_filters, public_url, redact_text
from olmoearth_data.stac.retry import RetryPolicy

log = logging.getLogger(__name__)
install_log_filters()  # odc-stac and rasterio log failed reads with their signed URLs

#: The role of an asset host in outage reports.
BLOB_ROLE = "blob storage"


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

    Every present asset's href is signed first (``sign`` checks it may be opened at all and fetches
    the SAS token, so a refused href or a token outage fails here, unwrapped); odc-stac then applies
    ``sign`` again right before it opens each file (a cached token), so no signed URL outlives the read.
    An asset the item lacks reads as all ``nodata``. Raises
    :class:`~olmoearth_data.composite.read_errors.BadAssetError` when a file's CRS contradicts the
    one its item declares (see :func:`~olmoearth_data.composite.read_errors.check_asset_crs`).

    With a :class:`~olmoearth_data.composite.range_reads.RangeReader` active in this thread
    (:func:`~olmoearth_data.composite.range_reads.using`), the files are read through it (no size
    probe per file) and a failed request is raised as itself, not as GDAL's "read failed".
    """
    present = [a for a in assets if a in item.assets]
    out = np.full((len(assets), *geobox.shape), nodata, dtype=dtype)
    if not present:
        return out
    options = {"dtype": dtype, "nodata": nodata, "resampling": resampling}
    for a in present:
        sign(item.assets[a].href)
    reader = active_reader()
    if reader is None:
        return _load(item, assets=assets, present=present, geobox=geobox, out=out, sign=sign, **options)
    with reader.paths() as to_path:
        try:
            return _load(
                item,
                assets=assets,
                present=present,
                geobox=geobox,
                out=out,
                sign=lambda href: to_path(sign(href)),
                **options,
            )
        except Exception as exc:  # GDAL saw "read failed"; the reader knows the request that did
            pending = reader.take_error()
            if pending is not None:
                raise pending from exc
            raise


def _load(
    item: pystac.Item,
    *,
    assets: Sequence[str],
    present: Sequence[str],
    geobox: GeoBox,
    out: np.ndarray,
    sign: Callable[[str], str],
    dtype: str,
    nodata: float | int,
    resampling: str,
) -> np.ndarray:
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
        pool=None,  # in this thread (one read at a time, as pool=1, without a thread per call)
    )
    for i, a in enumerate(assets):
        if a in item.assets:
            out[i] = ds[a].values[0]
    return out


def _blob_host(item: pystac.Item, hrefs: Sequence[str], sign: Callable[[str], str]) -> str:
    """The host the item's reads went to (after signing: a blob endpoint mapping included)."""
    for href in hrefs:
        try:
            return host_of_url(sign(href))
        except Exception:  # signing failed now: name the href's own host
            return host_of_url(href)
    return "?"


def _signed(hrefs: Sequence[str], sign: Callable[[str], str]) -> list[str]:
    """The URLs GDAL opened for ``hrefs`` (signed, mapped to the blob endpoint); an href that cannot be
    signed now is skipped (its file was not opened either)."""
    urls = []
    for href in hrefs:
        try:
            urls.append(sign(href))
        except Exception:
            continue
    return urls


def read_item(
    item: pystac.Item, *, sign: Callable[[str], str], retry: RetryPolicy | None, load_args: dict
) -> np.ndarray | None:
    """:func:`load_item` retried by ``retry``'s delays while the failure is transient.

    Returns the pixels, or None (logged with the unsigned href) when the item's file is bad. Raises
    :class:`SourceUnavailableError` when the failure is the network's or a service's and every try failed.
    """
    delays = retry.delays() if retry is not None else []
    hrefs = [item.assets[a].href for a in load_args["assets"] if a in item.assets]
    for attempt in range(len(delays) + 1):
        try:
            with rasterio.Env(**gdal_retry_options(retry)):
                return load_item(item, sign=sign, **load_args)
        except Exception as exc:  # classify: the file's fault (skip), the network's (retry), a service's
            outage = find_outage(exc)
            if outage is not None:
                raise outage from None
            transient = is_transient(exc)
            where = [public_url(h) for h in failing_hrefs(exc, hrefs)]
            if transient and attempt < len(delays):
                log.info("retrying item %s: read error (%s) for %s", item.id, redact_text(str(exc)), where)
                time.sleep(delays[attempt])
                # else GDAL may answer the retry from a cached "missing file"; this item's files only
                clear_remote_cache(urls=_signed(hrefs, sign))
                if http_status(exc) in (401, 403):
                    getattr(sign, "forget_tokens", lambda: None)()  # an expired SAS token: fetch anew
                continue
            if transient:
                failure = describe_failure(exc)
                log.warning("item %s: %s after %d tries for %s", item.id, failure, attempt + 1, where)
                raise SourceUnavailableError(
                    host=_blob_host(item, hrefs, sign), role=BLOB_ROLE, failure=failure
                ) from None
            log.warning(
                "skipping item %s: read failed, bad file: not retried (%s) for %s",
                item.id,
                redact_text(error_text(exc).splitlines()[-1]),
                where,
            )
            return None
    return None
