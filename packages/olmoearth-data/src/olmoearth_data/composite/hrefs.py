"""Which asset hrefs a build may open: http(s) only, unless a local mirror is allowed explicitly.

A catalogue is remote input. GDAL opens whatever an href names — ``file:///etc/…``, a bare path,
``/vsizip/…`` — so an item (a hostile or broken catalogue, a mirror's rewrite gone wrong) could make a
build read local files into the corpus. Every href is checked right before it is signed and opened:
``http``/``https`` URLs with a host pass; anything else passes only if it starts with one of the
``allow`` prefixes (``CatalogConfig.local_href_prefixes``, e.g. ``file:///data/mirror/``). A refused
href is the data's fault, like a corrupt file: its item is skipped, never retried
(:class:`RefusedHrefError` is a bad-file error for :mod:`~olmoearth_data.composite.read_errors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

REMOTE_SCHEMES = ("http", "https")


class RefusedHrefError(ValueError):
    """An asset href that is neither http(s) nor under an allowed local prefix."""


def check_href(href: str, *, allow: Sequence[str] = ()) -> str:
    """Return ``href`` if a build may open it, else raise :class:`RefusedHrefError`.

    Allowed: an ``http``/``https`` URL with a host, or a string starting with one of ``allow`` (an
    explicit allow-list for local mirrors; a prefix should end with ``/`` so that ``file:///data/m``
    does not admit ``file:///data/mirror-of-secrets``). ``..`` path segments are refused with a local
    prefix (they would step out of it).
    """
    parts = urlsplit(href)
    if parts.scheme.lower() in REMOTE_SCHEMES and parts.netloc:
        return href
    for prefix in allow:
        if prefix and href.startswith(prefix) and ".." not in href[len(prefix) :].split("/"):
            return href
    shown = href.split("?", 1)[0]
    raise RefusedHrefError(
        f"refused asset href {shown!r}: only http(s) URLs are read"
        + (
            f" (or hrefs under {list(allow)})"
            if allow
            else " (allow a local mirror with --allow-href-prefix)"
        )
    )
