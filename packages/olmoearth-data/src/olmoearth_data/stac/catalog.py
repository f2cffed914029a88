"""Which STAC catalogue a run reads, and how its requests are retried, timed out and signed.

Planetary Computer is the default. Its twin (``olmoearth_twin``) serves the same API on loopback and
keeps the real Azure blob hrefs; ``blob_endpoint`` maps ``https://<account>.blob.core.windows.net/…``
onto an Azurite-style endpoint ``<endpoint>/<account>/…`` *after* signing (SAS query kept), so
the same signing code runs against the twin's token endpoint — and the same switch points a run at any
blob-storage emulator or mirror.

Signing (:meth:`CatalogConfig.signer`) first checks the href (http(s) only, or under an allowed local
prefix, :mod:`olmoearth_data.composite.hrefs`), then fetches the container's SAS token with the run's
retry policy and timeouts (:mod:`olmoearth_data.stac.sas`; the PC SDK's own fetch retried ~7 minutes
per href while the endpoint was down).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pystac_client
from pystac_client.stac_api_io import StacApiIO

from olmoearth_data.composite.hrefs import check_href
from olmoearth_data.sources import PLANETARY_COMPUTER_STAC_URL
from olmoearth_data.stac.retry import RETRY_STATUSES, RetryPolicy
from olmoearth_data.stac.tile_index import DEFAULT_TILE_INDEXES, TileIndexRef

__all__ = ["RETRY_STATUSES", "CatalogConfig", "RetryPolicy", "require_subscription_key", "to_blob_endpoint"]


@dataclass(frozen=True)
class CatalogConfig:
    """Where to search and how to turn an item's href into something readable.

    Attributes:
        stac_url: STAC API root.
        sign: ``"planetary_computer"`` (SAS-sign every href just before reading) or ``"none"``.
        blob_endpoint: Azurite-style endpoint replacing ``https://<account>.blob.core.windows.net`` after
            signing (``None``: read Azure directly).
        retry: retry/backoff/timeout policy.
        tile_indexes: source collection name (``SourceSpec.collection``: ``wri-canopy-height``,
            ``worldcereal-2021``) → GeoJSON footprint index of a tile-index source (see
            :mod:`olmoearth_data.stac.tile_index`; defaults: the real public hosts).
        sas_url: the SAS token endpoint (``…/api/sas/v1/token``); None: the PC SDK's setting
            (``PC_SDK_SAS_URL``, else Planetary Computer's).
        local_href_prefixes: hrefs starting with one of these are read although they are not http(s)
            (a local mirror, e.g. ``file:///data/mirror/``); every other non-http(s) href is refused.
    """

    stac_url: str = PLANETARY_COMPUTER_STAC_URL
    sign: str = "planetary_computer"
    blob_endpoint: str | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    tile_indexes: dict[str, TileIndexRef] = field(default_factory=lambda: dict(DEFAULT_TILE_INDEXES))
    sas_url: str | None = None
    local_href_prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.sign not in ("planetary_computer", "none"):
            raise ValueError(f"sign must be 'planetary_computer' or 'none', got {self.sign!r}")

    def open_client(self) -> pystac_client.Client:
        """A pystac-client ``Client`` whose requests retry with backoff and time out."""
        io = StacApiIO(max_retries=self.retry.urllib3_retry(), timeout=self.retry.timeout_s)
        return pystac_client.Client.open(self.stac_url, stac_io=io, timeout=self.retry.timeout_s)

    def signer(self) -> Callable[[str], str]:
        """A function ``unsigned href → readable URL``, to call right before each read.

        Raises :class:`~olmoearth_data.composite.hrefs.RefusedHrefError` for an href a build must not open,
        :class:`~olmoearth_data.outages.SourceUnavailableError` when the SAS endpoint fails past the retries.
        """
        endpoint, allow = self.blob_endpoint, self.local_href_prefixes
        if self.sign == "planetary_computer":
            from olmoearth_data.stac.sas import SasTokens

            tokens = SasTokens(retry=self.retry, sas_url=self.sas_url)

            def sign(href: str) -> str:
                return to_blob_endpoint(tokens.sign(check_href(href, allow=allow)), endpoint=endpoint)

            sign.forget_tokens = tokens.forget  # type: ignore[attr-defined]  (a blob host's 403: renew)
        else:

            def sign(href: str) -> str:
                return to_blob_endpoint(check_href(href, allow=allow), endpoint=endpoint)

        return sign


_BLOB_URL = re.compile(r"^https://([a-z0-9]+)\.blob\.core\.windows\.net/(.*)$")


def to_blob_endpoint(url: str, *, endpoint: str | None) -> str:
    """Map ``https://<account>.blob.core.windows.net/<rest>`` to ``<endpoint>/<account>/<rest>``."""
    if endpoint is None:
        return url
    m = _BLOB_URL.match(url)
    return f"{endpoint.rstrip('/')}/{m.group(1)}/{m.group(2)}" if m else url


def require_subscription_key(*, collections: list[str], catalog: CatalogConfig) -> None:
    """Stop before any work if a collection needs a Planetary Computer account and no key is set.

    Planetary Computer refuses SAS tokens for collections with ``msft:requires_account`` (e.g.
    ``sentinel-1-rtc``) without a subscription key; failing here beats failing hours into a build.
    """
    if catalog.sign != "planetary_computer" or not collections:
        return
    if os.environ.get("PC_SDK_SUBSCRIPTION_KEY"):
        return
    raise RuntimeError(
        f"collections {sorted(collections)} need a Planetary Computer account: set PC_SDK_SUBSCRIPTION_KEY "
        "to your subscription key (https://planetarycomputer.microsoft.com/account/request), or leave "
        "these modalities out of the modality set"
    )
