"""Azure blob URLs and the twin's href-rewrite contract.

Items in the twin carry the exact Planetary Computer asset hrefs
(``https://<account>.blob.core.windows.net/<container>/<blob path>``) so that the real
``planetary_computer.sign`` recognises and signs them (it only signs hosts ending in
``.blob.core.windows.net``). After signing, a reader that talks to the twin maps the blob host onto the
twin's blob server, which uses the Azurite-style path layout
``<endpoint>/<account>/<container>/<blob path>`` and keeps the SAS query string::

    https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/10/U/FA/...B04_10m.tif?st=...&sig=...
    -> http://127.0.0.1:<port>/sentinel2l2a01/sentinel2-l2/10/U/FA/...B04_10m.tif?st=...&sig=...

The endpoint is published in the environment variable :data:`BLOB_ENDPOINT_ENV`; when it is unset
(production) the rewrite is the identity. Pipelines call :func:`rewrite_href` (or re-implement its
five lines) right after signing, e.g. ``odc.stac.load(..., patch_url=lambda h: rewrite_href(pc.sign(h)))``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

#: Environment variable holding the twin's blob endpoint, e.g. ``http://127.0.0.1:40123``.
BLOB_ENDPOINT_ENV = "OLMOEARTH_BLOB_ENDPOINT"
#: Host suffix of Azure blob storage (what the PC SDK checks before signing).
BLOB_HOST_SUFFIX = ".blob.core.windows.net"


@dataclass(frozen=True)
class BlobRef:
    """An Azure blob address: storage account, container and blob path (no leading slash)."""

    account: str
    container: str
    path: str

    def https_url(self) -> str:
        """The Planetary Computer form ``https://<account>.blob.core.windows.net/<container>/<path>``."""
        return f"https://{self.account}{BLOB_HOST_SUFFIX}/{self.container}/{self.path}"


def parse_blob_url(*, url: str) -> BlobRef | None:
    """Split an ``https://<account>.blob.core.windows.net/<container>/<path>`` URL (query ignored).

    Returns ``None`` for any other URL (the SDK leaves those unsigned too).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if not host.endswith(BLOB_HOST_SUFFIX):
        return None
    container, _, path = parts.path.lstrip("/").partition("/")
    if not container or not path:
        return None
    return BlobRef(account=host[: -len(BLOB_HOST_SUFFIX)], container=container, path=path)


def rewrite_href(href: str, *, endpoint: str | None = None) -> str:
    """Map a (signed or unsigned) blob URL onto a blob endpoint, keeping the query string.

    Args:
        href: an asset href; non-blob hrefs are returned unchanged.
        endpoint: base URL of the twin's blob server; defaults to ``$OLMOEARTH_BLOB_ENDPOINT``.
            With neither, ``href`` is returned unchanged (production behaviour).

    Returns:
        ``<endpoint>/<account>/<container>/<path>[?<query>]`` or ``href``.
    """
    endpoint = endpoint if endpoint is not None else os.environ.get(BLOB_ENDPOINT_ENV)
    if not endpoint:
        return href
    ref = parse_blob_url(url=href)
    if ref is None:
        return href
    base = urlsplit(endpoint.rstrip("/"))
    path = f"{base.path}/{ref.account}/{ref.container}/{ref.path}"
    return urlunsplit((base.scheme, base.netloc, path, urlsplit(href).query, ""))
