"""Outages: a remote service that fails past the retries. They leave samples *pending*, never dropped.

Two kinds of failure reach a build, and only one of them may cost data:

* **the data's** — no item covers a period, an item's file is corrupt, truncated, in the wrong CRS,
  missing (HTTP 404/410) or not reachable over http(s): the item (or period) is skipped and, when
  nothing is left, the sample may be dropped. Retrying would fail the same way.
* **the service's** — the SAS token endpoint answers 401/403 or cannot be reached, the blob host or the
  STAC API answers 429/5xx, connections reset or time out. After the run's
  :class:`~olmoearth_data.stac.catalog.RetryPolicy` these raise :class:`SourceUnavailableError`, which
  stops the sample: it stays ``PENDING`` (status reason naming host and failure), the build exits
  non-zero with a summary per host, and a rerun once the service is back builds it like any pending
  sample. A key or a service fixed later therefore never needs the corpus deleted.

Every text here is credential-free: hosts only (no userinfo), messages through
:func:`~olmoearth_data.redact.redact_text`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from olmoearth_data.redact import redact_text

#: Start of the ``status_reason`` of a sample a build left pending on purpose (an outage stopped it,
#: modalities were added): what it has stored is whole, a rerun builds only what it lacks.
PENDING_PREFIX = "pending: "
#: HTTP statuses that say "the service, not the file": auth, timeouts, throttling, server errors.
SERVICE_STATUSES = frozenset({401, 403, 407, 408, 425, 429, 500, 502, 503, 504})
_STATUS_IN_TEXT = re.compile(r"(?:HTTP response code:?|too many|status(?: code)?:?|HTTP)\s*(\d{3})\b")


@dataclass(frozen=True)
class Outage:
    """One service failure that left a sample pending.

    Attributes:
        host: ``host[:port]`` contacted (never userinfo).
        role: what the host is to the build: ``SAS token endpoint``, ``blob storage``, ``STAC API``,
            ``tile index``.
        failure: short cause, e.g. ``HTTP 401``, ``connection refused``, ``timed out``.
    """

    host: str
    role: str
    failure: str

    def describe(self) -> str:
        return f"{self.role} {self.host} unavailable ({self.failure})"


class SourceUnavailableError(RuntimeError):
    """A remote service failed past the run's retries; the sample must stay pending (not dropped)."""

    def __init__(self, *, host: str, role: str, failure: str) -> None:
        self.outage = Outage(host=host, role=role, failure=redact_text(failure))
        super().__init__(self.outage.describe())


def host_of_url(url: str) -> str:
    """``host[:port]`` of a URL without userinfo (``?`` when it has none)."""
    netloc = urlsplit(url).netloc
    return netloc.rsplit("@", 1)[-1].lower() or "?"


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def find_outage(exc: BaseException) -> SourceUnavailableError | None:
    """The :class:`SourceUnavailableError` in ``exc``'s cause chain, if any (libraries may wrap it)."""
    return next((e for e in _chain(exc) if isinstance(e, SourceUnavailableError)), None)


def http_status(exc: BaseException) -> int | None:
    """The HTTP status an error carries: a ``response.status_code``/``status_code`` attribute, or one
    named in its messages (GDAL's ``HTTP response code: 503``, urllib3's ``too many 503 error
    responses``); None when it has none (a connection failure)."""
    for e in _chain(exc):
        response = getattr(e, "response", None)
        code = getattr(response, "status_code", None) or getattr(e, "status_code", None)
        if isinstance(code, int):
            return code
    for e in _chain(exc):
        m = _STATUS_IN_TEXT.search(str(e))
        if m:
            return int(m.group(1))
    return None


def describe_failure(exc: BaseException) -> str:
    """A short, credential-free cause: ``HTTP 503``, ``connection refused``, ``timed out``, ``connection
    reset``, else the last line of the most specific message."""
    status = http_status(exc)
    if status is not None:
        return f"HTTP {status}"
    text = " ".join(str(e) for e in _chain(exc)).lower()
    for needle, label in (
        ("refused", "connection refused"),
        ("could not connect", "connection refused"),
        ("timed out", "timed out"),
        ("timeout", "timed out"),
        ("reset", "connection reset"),
        ("empty reply", "connection reset (empty reply)"),
        ("remote end closed", "connection reset"),
        ("name or service not known", "host name not resolved"),
        ("failed to resolve", "host name not resolved"),
        ("name resolution", "host name not resolved"),
    ):
        if needle in text:
            return label
    last = [e for e in _chain(exc)][-1]
    return redact_text(f"{type(last).__name__}: {last}".splitlines()[0])[:200]


def is_service_failure(exc: BaseException) -> bool:
    """Whether a failed HTTP request (requests, urllib3, pystac-client) is the service's: no answer at
    all (refused, reset, timed out, DNS) or an answer in :data:`SERVICE_STATUSES`. A 400/404 and
    other client errors are not (a wrong URL or query: retrying will not help, waiting neither)."""
    status = http_status(exc)
    if status is not None:
        return status in SERVICE_STATUSES
    import requests

    return any(
        isinstance(e, requests.exceptions.ConnectionError | requests.exceptions.Timeout | ConnectionError)
        or type(e).__name__ in {"MaxRetryError", "NewConnectionError", "ProtocolError", "APIError"}
        for e in _chain(exc)
    )


def summarise(outages: Iterable[tuple[int, Outage]]) -> list[dict[str, object]]:
    """Per (host, role, failure): the number of samples left pending, most first (for the build
    summary and its message)."""
    counts: dict[Outage, list[int]] = {}
    for index, outage in outages:
        counts.setdefault(outage, []).append(index)
    rows = [
        {"host": o.host, "role": o.role, "failure": o.failure, "samples": len(ix), "first_sample": min(ix)}
        for o, ix in counts.items()
    ]
    return sorted(rows, key=lambda r: (-int(r["samples"]), str(r["host"])))


def incomplete_message(*, pending: int, outages: Sequence[Mapping[str, object]]) -> str:
    """One line for a build that left samples pending: how many, and per host the failure."""
    causes = "; ".join(
        f"{o['role']} {o['host']}: {o['failure']} ({o['samples']} sample{'s' if o['samples'] != 1 else ''})"
        for o in outages
    )
    return (
        f"build incomplete: {pending} sample{'s' if pending != 1 else ''} left pending (not dropped)"
        + (f" — {causes}" if causes else "")
        + "; rerun the same command once the service is back to build them"
    )
