"""Keep credentials out of everything a build writes: corpus metadata, index, caches, logs, messages.

Credentials reach a build in URLs: ``user:password@`` in a STAC URL, a SAS query string (``?sv=…&sig=…``)
on a ``--tile-index`` URL or on a signed asset href, an ``Authorization`` header that a library prints at
debug level. Whatever is persisted or printed goes through these helpers first:

* :func:`public_url` — a URL without userinfo, query string and fragment (``https://h/p``);
* :func:`redact_text` — the same for every URL inside a free-text message (errors, log lines), plus
  ``Authorization`` / subscription-key header values;
* :func:`redact_tree` — :func:`public_url` applied to every URL-valued string of a JSON-like tree (the
  build configuration saved in the corpus).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

#: ``scheme://[userinfo@]host…`` up to whitespace or a quote, inside free text.
_URL_IN_TEXT = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>[^\s'\"<>]*)")
#: A bare query string that survived outside a URL (``…/file.tif?st=…&sig=…``).
_QUERY = re.compile(r"\?[^\s'\"<>]+")
#: Header values that are credentials, as libraries print them in dicts or ``Name: value`` lines.
_SECRET_HEADERS = re.compile(
    r"(?P<name>['\"]?(?:Authorization|Proxy-Authorization|Ocp-Apim-Subscription-Key)['\"]?\s*[:=]\s*)"
    r"(?P<quote>['\"]?)(?P<value>[^'\"\n,}]*)",
    re.IGNORECASE,
)
REDACTED = "<redacted>"


def public_url(url: str) -> str:
    """``url`` without userinfo, query string and fragment; a string that is not an absolute URL
    (a local path) is returned unchanged."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _strip_url(match: re.Match[str]) -> str:
    rest = match.group("rest")
    authority, slash, path = rest.partition("/")
    authority = authority.rsplit("@", 1)[-1]
    path = _QUERY.sub("?" + REDACTED, path) if slash else ""
    if not slash:
        authority = _QUERY.sub("?" + REDACTED, authority)
    return f"{match.group('scheme')}{authority}{slash}{path}"


def redact_text(text: str) -> str:
    """``text`` with the userinfo and query string of every URL in it replaced, any other query string
    (``?sig=…``) redacted, and credential header values (``Authorization``, the PC subscription key)
    blanked."""
    text = _URL_IN_TEXT.sub(_strip_url, text)
    text = _QUERY.sub("?" + REDACTED, text)
    return _SECRET_HEADERS.sub(lambda m: f"{m.group('name')}{m.group('quote')}{REDACTED}", text)


def redact_tree(value: Any) -> Any:
    """A copy of a JSON-like tree (dicts, lists, tuples, scalars) with every absolute URL string made
    :func:`public_url`."""
    if isinstance(value, str):
        return public_url(value)
    if isinstance(value, Mapping):
        return {k: redact_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v) for v in value]
    return value


class RedactSecrets(logging.Filter):
    """A logging filter rewriting each record's message with :func:`redact_text` (for handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redact_record(record)
        return True


def _redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it to the handler's own error path
        return
    cleaned = redact_text(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None


_installed = False


def install_log_filters() -> None:
    """Redact every log record of this process at creation (idempotent).

    Libraries log the URLs they open — odc-stac a failed read with its *signed* URL, rasterio's and
    GDAL's debug output, pystac-client its request headers (a ``user:password`` STAC URL becomes an
    ``Authorization`` header) — from loggers at any depth of their hierarchies, where a filter on a
    parent logger never runs (filters do not apply to records propagated from children). So the
    record factory is wrapped instead: each record's message passes :func:`redact_text` once, before
    any handler sees it. Records are only created for enabled levels, so quiet loggers cost nothing.
    """
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
