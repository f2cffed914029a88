"""What a failed read means, and how a read is retried: the network (try again) or the file (never).

Two layers retry, both from the run's :class:`~olmoearth_data.stac.catalog.RetryPolicy`:

* GDAL retries each HTTP request answered 429/500/502/503/504 itself (``GDAL_HTTP_MAX_RETRY``,
  ``GDAL_HTTP_RETRY_DELAY``, doubling), re-sending only that range request. :func:`gdal_retry_options`
  sets both from the policy for every item read, so a test's millisecond policy is not slowed by GDAL's
  fixed half-second delays and production waits what the policy says.
* GDAL does not retry a dropped connection ("Empty reply from server", resets), a timeout, or a file it
  wrongly concluded is missing after one ("does not exist in the file system"): :func:`is_transient`
  says so, and the item loops (``first_valid``, ``tile_index``) read the item again after the policy's
  backoff.

A file that arrives whole but cannot be decoded (a truncated or corrupt TIFF, not a TIFF at all) or
whose CRS disagrees with its item (:class:`BadAssetError`) fails the same way every time: it is not
retried and its item is skipped at once. Retrying it like a network error cost a permanently bad asset
the policy's whole backoff (1 + 2 + 4 + 8 + 16 = 31 s with the default policy) for nothing. The same
holds for an asset the server says is not there (HTTP 404/410, or any 4xx that is not about auth or
throttling, :data:`~olmoearth_data.outages.SERVICE_STATUSES`): GDAL names the status in its error
(``HTTP response code: 404``), and that status decides before any network marker does — a 404 used to
match the ``HTTP response code`` marker and cost ~110 s of retries per build of the sample.

A network failure that outlives the retries is not the file's either: the item loops raise
:class:`~olmoearth_data.outages.SourceUnavailableError` for it, which leaves the sample pending
(:mod:`olmoearth_data.outages`), instead of skipping the item as if it were bad.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pystac
import rasterio
import requests
from rasterio.crs import CRS

from olmoearth_data.composite.hrefs import RefusedHrefError
from olmoearth_data.composite.range_reads import RangeReadError
from olmoearth_data.gdal_env import retry_options
from olmoearth_data.outages import SERVICE_STATUSES, http_status
from olmoearth_data.stac.retry import RetryPolicy

#: Substrings of GDAL/rasterio errors that come from the network, not from the file's bytes.
TRANSIENT_MARKERS = (
    "CURL error",  # resets, empty replies, refused connections, curl timeouts
    "does not exist in the file system",  # vsicurl's verdict after a failed first request
    "HTTP response code",  # a 429/5xx that outlived GDAL's own retries
    "timed out",
    "Timeout",
)


class BadAssetError(RuntimeError):
    """An asset that reads but must not be used (its georeferencing contradicts its item's)."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def error_text(exc: BaseException) -> str:
    """Every message of ``exc``'s cause chain (rasterio chains GDAL's error stack), one per line."""
    return "\n".join(f"{type(e).__name__}: {e}" for e in _chain(exc))


def is_transient(exc: BaseException) -> bool:
    """True when a failed read may succeed if tried again (a network or service failure), False when the
    file itself is bad (decode error, :class:`BadAssetError`, HTTP 404/410 and other non-service 4xx,
    anything without a network marker)."""
    if any(isinstance(e, BadAssetError | RefusedHrefError) for e in _chain(exc)):
        return False
    for e in _chain(exc):  # the range reader's own verdicts (composite.range_reads)
        if isinstance(e, RangeReadError):
            return e.transient
        if isinstance(e, requests.ConnectionError | requests.Timeout):
            return True
    status = http_status(exc)
    if status is not None:
        return status in SERVICE_STATUSES
    text = error_text(exc)
    return any(marker in text for marker in TRANSIENT_MARKERS)


def failing_hrefs(exc: BaseException, hrefs: Sequence[str]) -> list[str]:
    """The hrefs whose file name appears in ``exc``'s messages (GDAL names the file it failed on);
    all of ``hrefs`` when none does."""
    text = error_text(exc)
    named = [h for h in hrefs if h.rsplit("/", 1)[-1].split("?")[0] in text]
    return named or list(hrefs)


def gdal_retry_options(retry: RetryPolicy | None) -> dict[str, str]:
    """GDAL config options making its per-request HTTP retries follow ``retry`` (empty for None)."""
    return retry_options(retry)


def declared_epsg(item: pystac.Item, asset: str) -> int | None:
    """The EPSG code the item (or the asset, which wins) declares for ``asset``'s file: ``proj:epsg``
    or ``proj:code`` ``"EPSG:<n>"``; None when it declares none (nothing to check against)."""
    for fields in (item.assets[asset].extra_fields, item.properties):
        epsg = fields.get("proj:epsg")
        if epsg is not None:
            return int(epsg)
        code = fields.get("proj:code")
        if isinstance(code, str) and code.upper().startswith("EPSG:"):
            return int(code.split(":", 1)[1])
    return None


def check_asset_crs(item: pystac.Item, *, assets: Sequence[str], sign: Callable[[str], str]) -> None:
    """Raise :class:`BadAssetError` when an asset's file is not in the CRS its item declares.

    odc-stac reads each file with the file's own georeferencing, so a file whose CRS contradicts the
    item (EPSG:4326 written on UTM numbers, say) lands nowhere or somewhere wrong while the item's other
    bands land right: the composite would mix bands of different places. Only the file header is read
    (GDAL's ``/vsicurl/`` cache then serves the same bytes to the pixel read).
    """
    for asset in assets:
        declared = declared_epsg(item, asset)
        if declared is None:
            continue
        href = item.assets[asset].href
        with rasterio.open(sign(href)) as ds:
            crs = ds.crs
        # Semantic equality as well: a file whose WKT names no EPSG code can still be the same CRS.
        if crs is None or (crs.to_epsg() != declared and crs != CRS.from_epsg(declared)):
            raise BadAssetError(
                f"asset {asset!r} of item {item.id} is in {crs.to_string() if crs else 'no CRS'} but the "
                f"item declares EPSG:{declared}; the item is not used ({href})"
            )
