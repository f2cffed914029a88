"""Blob server: the twin's Azure Blob Storage, serving generated files with HTTP range requests.

Layout is Azurite's path style, ``GET|HEAD /<account>/<container>/<blob path>?<SAS>``, so the account
and container stay recoverable from the URL. Like a private Azure container, every request must carry
a valid SAS query string (see :mod:`olmoearth_twin.servers.sas`); otherwise 403 with an Azure-style XML
error. Ranges follow what Azure supports and GDAL's ``/vsicurl/`` uses: one ``bytes=a-b``, ``bytes=a-``
or ``bytes=-n`` range → 206 with ``Content-Range``; unsatisfiable → 416; several ranges → the whole
blob (200), which RFC 9110 allows.
"""

from __future__ import annotations

import contextlib
import email.utils
import mimetypes
import re
import threading
from collections.abc import Container, Iterator, Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

from olmoearth_twin.servers.http_thread import QuietHandler
from olmoearth_twin.servers.sas import SERVICE_VERSION, SasIssuer

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 1 << 16
_TYPES = {
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".xml": "application/xml",
    ".safe": "application/xml",
    ".json": "application/json",
}


def _content_type(path: Path) -> str:
    return _TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def _azure_error(code: str, message: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>{message}\n'
        f"Time:{email.utils.formatdate(usegmt=True)}</Message></Error>"
    ).encode()


def parse_range(*, header: str | None, size: int) -> tuple[int, int] | str | None:
    """Resolve a ``Range`` header against a blob of ``size`` bytes.

    Returns ``(first, last)`` inclusive byte offsets, ``None`` for "send everything" (no header,
    several ranges, or a syntax we ignore), or ``"unsatisfiable"``.
    """
    if not header or "," in header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None
    if not m.group(1):  # suffix range: the last n bytes
        n = int(m.group(2))
        return "unsatisfiable" if n == 0 or size == 0 else (max(0, size - n), size - 1)
    first = int(m.group(1))
    last = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if first >= size or last < first:
        return "unsatisfiable"
    return (first, last)


class BlobStats:
    """Request counters (tests use them to see that reads were ranged and signed, and how many
    requests were being served at once: ``max_in_flight`` is that high-water mark since the last
    :meth:`reset_in_flight`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_status: dict[int, int] = {}
        self.range_requests = 0
        self.in_flight = 0
        self.max_in_flight = 0

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Count one request as in flight for the block (from its headers parsed to its body sent)."""
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            yield
        finally:
            with self._lock:
                self.in_flight -= 1

    def reset_in_flight(self) -> None:
        """Restart the high-water mark from the requests in flight now."""
        with self._lock:
            self.max_in_flight = self.in_flight

    def record(self, *, status: int, ranged: bool) -> None:
        with self._lock:
            self.by_status[status] = self.by_status.get(status, 0) + 1
            self.range_requests += int(ranged)


def make_blob_handler(
    *,
    roots: Sequence[Path],
    issuer: SasIssuer,
    stats: BlobStats,
    public: Container[tuple[str, str]] = frozenset(),
) -> type[QuietHandler]:
    """HTTP handler class serving ``<root>/<account>/<container>/<path>`` for the first root that has
    it. ``roots`` (and ``public``) may be added to while serving. ``public`` holds the (account,
    container) pairs readable without a SAS, like Azure containers with anonymous blob access (the twin
    serves the S3- and Zenodo-hosted maps that way)."""

    class BlobHandler(QuietHandler):
        def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
            with stats.serving():
                self._serve(head_only=True)

        def do_GET(self) -> None:  # noqa: N802
            with stats.serving():
                self._serve(head_only=False)

        def _fail(self, status: int, code: str, message: str, head_only: bool) -> None:
            stats.record(status=status, ranged=False)
            self.send_body(
                status=status,
                body=_azure_error(code, message),
                content_type="application/xml",
                head_only=head_only,
                headers={"x-ms-error-code": code},
            )

        def _serve(self, *, head_only: bool) -> None:
            parts = urlsplit(self.path)
            segments = unquote(parts.path).lstrip("/").split("/", 2)
            if len(segments) < 3 or not all(segments) or {".", ".."} & set("/".join(segments).split("/")):
                self._fail(400, "InvalidUri", "The requested URI does not represent any resource.", head_only)
                return
            account, container, blob = segments
            anonymous = (account, container) in public
            reason = (
                None if anonymous else issuer.check(account=account, container=container, query=parts.query)
            )
            if reason is not None:
                self._fail(403, "AuthenticationFailed", reason, head_only)
                return
            path = next(
                (p for p in (Path(r, account, container, blob) for r in list(roots)) if p.is_file()), None
            )
            if path is None:
                self._fail(404, "BlobNotFound", "The specified blob does not exist.", head_only)
                return
            size = path.stat().st_size
            wanted = parse_range(header=self.headers.get("Range"), size=size)
            if wanted == "unsatisfiable":
                stats.record(status=416, ranged=True)
                self.send_body(
                    status=416,
                    body=b"",
                    content_type="application/xml",
                    head_only=head_only,
                    headers={"Content-Range": f"bytes */{size}"},
                )
                return
            first, last = wanted if isinstance(wanted, tuple) else (0, size - 1)
            status = 206 if isinstance(wanted, tuple) else 200
            stats.record(status=status, ranged=status == 206)
            self.send_response(status)
            self.send_header("Content-Type", _content_type(path))
            self.send_header("Content-Length", str(last - first + 1))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Last-Modified", email.utils.formatdate(path.stat().st_mtime, usegmt=True))
            self.send_header("ETag", f'"0x{int(path.stat().st_mtime_ns):X}{size:X}"')
            self.send_header("x-ms-blob-type", "BlockBlob")
            self.send_header("x-ms-version", SERVICE_VERSION)
            if status == 206:
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            if head_only:
                return
            with open(path, "rb") as f:
                f.seek(first)
                remaining = last - first + 1
                while remaining > 0:
                    chunk = f.read(min(_CHUNK, remaining))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    remaining -= len(chunk)

    return BlobHandler
