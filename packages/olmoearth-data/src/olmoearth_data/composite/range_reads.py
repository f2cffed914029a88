"""Remote COGs read through Python range GETs: no size probe per file (docs/network.md).

GDAL's ``/vsicurl/`` opens a remote file with a request for its size (``HEAD``, or a ranged ``GET``
with ``CPL_VSIL_CURL_USE_HEAD=NO``) before the first ranged ``GET`` for its header; ``/vsiaz/`` does the
same. Over a WAN that probe is a full round trip per asset, and a third of a sample's blob requests
(measured on the twin, docs/network.md). :class:`RangeReader` serves GDAL's reads from Python instead,
through rasterio's file-opener plugin: the first ``GET`` asks for the header bytes
(:data:`HEADER_BYTES`, as ``GDAL_INGESTED_BYTES_AT_OPEN``) and the file size comes from that answer's
``Content-Range``, so a file costs its header request plus its pixel requests. The header bytes are
kept (LRU, :data:`CACHE_BYTES`), so a second open of the same file — the CRS check, then odc-stac —
costs nothing, as with ``/vsicurl/``'s cache.

Failures keep their meaning for :mod:`~olmoearth_data.composite.read_errors`: each request is retried
by the run's :class:`~olmoearth_data.stac.retry.RetryPolicy` on what GDAL retries (429/5xx) and on
what it does not (resets, timeouts, short bodies); what outlives the retries is kept per thread and
re-raised by :meth:`RangeReader.take_error` in place of GDAL's generic "read failed", as a ``requests`` error
carrying the HTTP status, or :class:`RangeReadError`.

rasterio exposes its opener plugin publicly only through ``rasterio.open(..., opener=)``, which
odc-stac does not pass on; :mod:`~olmoearth_data.composite.vsi_plugin` installs one GDAL prefix per
process through rasterio's private registration (rasterio 1.4) and routes it to the calling thread's
reader. Where that is missing :func:`opener_supported` is False and reads stay on ``/vsicurl/``.
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import requests

from olmoearth_data.composite import vsi_plugin
from olmoearth_data.redact import public_url
from olmoearth_data.stac.retry import RetryPolicy

log = logging.getLogger(__name__)

#: Bytes asked for by a file's first request: a COG's header and tile index (GDAL's ingest size).
HEADER_BYTES = 64 * 1024
#: Smallest request past the header: GDAL's small reads (an IFD, a tile-offset array) come in a few.
MIN_READ_BYTES = 16 * 1024
#: Header and read-back bytes kept per worker (shared by its threads), least recently used evicted.
CACHE_BYTES = 128 * 1024 * 1024
#: Seconds to wait for a connection and for each read of an answer (as GDAL's
#: ``GDAL_HTTP_CONNECTTIMEOUT`` / ``GDAL_HTTP_TIMEOUT``; the read timeout is the policy's ``timeout_s``).
CONNECT_TIMEOUT_S = 10.0
#: Statuses worth another try (as GDAL's ``GDAL_HTTP_RETRY_CODES`` default).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


#: Failures of the connection rather than of the answer: always worth another try.
_DROPPED = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class RangeReadError(OSError):
    """A range request that failed for good: the file's unsigned URL and why."""

    def __init__(self, message: str, *, url: str, transient: bool) -> None:
        super().__init__(message)
        self.url = url
        self.transient = transient


def opener_supported() -> bool:
    """True when this rasterio has the opener plugin :class:`RangeReader` needs."""
    return vsi_plugin.plugin_supported()


class _Chunks:
    """Sizes and byte ranges of remote files kept in memory: per file, the least recently used file
    evicted first, bounded in bytes (thread-safe). A lookup scans only its own file's few ranges."""

    def __init__(self, *, capacity: int) -> None:
        self._files: collections.OrderedDict[str, tuple[int, list[tuple[int, bytes]]]] = (
            collections.OrderedDict()
        )
        self._bytes = 0
        self._capacity = capacity
        self._lock = threading.Lock()

    def put(self, url: str, *, size: int, offset: int, data: bytes) -> None:
        with self._lock:
            _, ranges = self._files.setdefault(url, (size, []))
            ranges.append((offset, data))
            self._files.move_to_end(url)
            self._bytes += len(data)
            while self._bytes > self._capacity and len(self._files) > 1:
                _, (_, evicted) = self._files.popitem(last=False)
                self._bytes -= sum(len(d) for _, d in evicted)

    def size(self, url: str) -> int | None:
        """The file's size, while its header is kept."""
        with self._lock:
            kept = self._files.get(url)
            return kept[0] if kept is not None else None

    def find(self, url: str, offset: int, length: int) -> bytes | None:
        """The bytes ``[offset, offset + length)`` when one kept range holds them all."""
        with self._lock:
            _, ranges = self._files.get(url, (0, []))
            for start, data in reversed(ranges):
                if start <= offset and offset + length <= start + len(data):
                    self._files.move_to_end(url)
                    return data[offset - start : offset - start + length]
        return None


class RangeReader:
    """Python range reads of remote files for GDAL (see the module docstring); one per worker.

    The opener behind :mod:`~olmoearth_data.composite.vsi_plugin`'s prefix, a multi-range container:
    GDAL hands over a window's tiles at once (:meth:`read_ranges` merges neighbours into one request,
    as ``GDAL_HTTP_MERGE_CONSECUTIVE_RANGES``).

    Creating one installs the process's GDAL prefix (:func:`~olmoearth_data.composite.vsi_plugin.install`):
    create it in the thread that sets up the build, before read threads start.

    Args:
        retry: how each request is retried (None: tried once).
        header_bytes: bytes of a file's first request.
        cache_bytes: bytes of headers and small reads kept.
    """

    def __init__(
        self,
        *,
        retry: RetryPolicy | None,
        header_bytes: int = HEADER_BYTES,
        cache_bytes: int = CACHE_BYTES,
    ) -> None:
        self.retry = retry
        self.header_bytes = header_bytes
        self._chunks = _Chunks(capacity=cache_bytes)
        self._local = threading.local()
        vsi_plugin.install()

    # -- the opener interface rasterio's plugin calls ---------------------------------------------------
    def size(self, path: str) -> int:
        """The file's size in bytes, from its first request's ``Content-Range`` (fetching the header)."""
        try:
            return self._header(path)
        except FileNotFoundError:
            raise
        except Exception as exc:
            self.record(exc)
            raise

    def isfile(self, path: str) -> bool:
        return path.startswith(("http://", "https://"))

    def isdir(self, path: str) -> bool:
        return False

    def ls(self, path: str) -> list[str]:
        return []

    def mtime(self, path: str) -> int:
        return 0

    def rm(self, path: str) -> None:
        raise OSError(f"read-only: {public_url(path)}")

    def open(self, path: str, mode: str = "rb", **kwargs: object) -> _RemoteFile:
        if "w" in mode or "a" in mode:
            raise OSError(f"read-only: {public_url(path)}")
        size = self._header(path)
        head = self._chunks.find(path, 0, min(self.header_bytes, size)) or b""
        return _RemoteFile(reader=self, url=path, size=size, head=head)

    # -- reads ---------------------------------------------------------------------------------------
    def read(self, url: str, offset: int, length: int) -> bytes:
        """Bytes ``[offset, offset + length)`` of the file at ``url`` (fewer only at its end)."""
        size = self._header(url)
        length = max(0, min(length, size - offset))
        if length == 0:
            return b""
        kept = self._chunks.find(url, offset, length)
        if kept is not None:
            return kept
        fetch = min(max(length, MIN_READ_BYTES), size - offset)
        data, _ = self._get(url, offset, fetch)
        if fetch > length:  # the read-back a small read brought along
            self._chunks.put(url, size=size, offset=offset, data=data)
        return data[:length]

    def read_ranges(self, url: str, offsets: Sequence[int], sizes: Sequence[int]) -> list[bytes]:
        """Several ranges of one file (GDAL's multi-range read of a window's tiles), neighbours merged
        into one request when the gap between them is under :data:`MIN_READ_BYTES`."""
        order = sorted(range(len(offsets)), key=lambda i: offsets[i])
        out: list[bytes] = [b""] * len(offsets)
        group: list[int] = []

        def flush() -> None:
            if not group:
                return
            start = offsets[group[0]]
            end = max(offsets[i] + sizes[i] for i in group)
            data = self.read(url, start, end - start)
            for i in group:
                out[i] = data[offsets[i] - start : offsets[i] - start + sizes[i]]
            group.clear()

        for i in order:
            if group and offsets[i] - max(offsets[j] + sizes[j] for j in group) > MIN_READ_BYTES:
                flush()
            group.append(i)
        flush()
        return out

    def _header(self, url: str) -> int:
        """The file's size; its first :attr:`header_bytes` are kept from the request that told it."""
        if not self.isfile(url):
            raise FileNotFoundError(url)
        size = self._chunks.size(url)
        if size is not None:
            return size
        data, size = self._get(url, 0, self.header_bytes)
        self._chunks.put(url, size=size, offset=0, data=data)
        return size

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:  # one keep-alive connection pool per thread, as GDAL keeps one per handle
            session = self._local.session = requests.Session()
        return session

    def _get(self, url: str, offset: int, length: int) -> tuple[bytes, int]:
        """One ranged GET, retried by the policy: (the bytes, the file's total size)."""
        delays = list(self.retry.delays()) if self.retry is not None else []
        where = public_url(url)
        for attempt in range(len(delays) + 1):
            try:
                return self._get_once(url, offset, length)
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else None
                if status not in RETRY_STATUSES or attempt == len(delays):
                    raise
                why = f"HTTP {status}"
            except RangeReadError as exc:
                if not exc.transient or attempt == len(delays):
                    raise
                why = str(exc)
            except _DROPPED as exc:
                # requests names the signed path in these messages: say what happened, not how.
                why = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
                if attempt == len(delays):
                    raise RangeReadError(
                        f"{why} reading {where} ({type(exc).__name__})", url=where, transient=True
                    ) from None
            log.info("range read of %s bytes %d-%d: %s; retrying", where, offset, offset + length - 1, why)
            time.sleep(delays[attempt])
        raise AssertionError("unreachable")

    def _get_once(self, url: str, offset: int, length: int) -> tuple[bytes, int]:
        where = public_url(url)
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        read_timeout = self.retry.timeout_s if self.retry is not None else 60.0
        timeout = (min(CONNECT_TIMEOUT_S, read_timeout), read_timeout)
        with self._session().get(url, headers=headers, timeout=timeout, stream=True) as response:
            if response.status_code >= 400:
                response.url = where  # the error names the unsigned URL, never the SAS token
                response.raise_for_status()
            data = response.content
            if response.status_code == 200:  # the server ignored the range: keep the whole file once
                self._chunks.put(url, size=len(data), offset=0, data=data)
                return data[offset : offset + length], len(data)
            total = response.headers.get("Content-Range", "").rpartition("/")[2]
            if not total.isdigit():
                raise RangeReadError(
                    f"no file size in the answer to a range request for {where}", url=where, transient=False
                )
            size = int(total)
            expected = min(length, size - offset)
            if len(data) != expected:
                raise RangeReadError(
                    f"short answer for {where}: {len(data)} of {expected} bytes", url=where, transient=True
                )
            return data, size

    # -- scopes ---------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def paths(self) -> Iterator[Callable[[str], str]]:
        """A function URL → the GDAL path that reads it through this reader, valid inside the block
        and in the calling thread (no GDAL state changes per file); errors the reads hit are recorded
        for :meth:`take_error`."""
        self._local.error = None
        with vsi_plugin.routed(self) as prefix:
            yield lambda url: prefix + url

    def record(self, exc: BaseException) -> None:
        """Keep the first failure of the calling thread's reads (GDAL only sees "read failed")."""
        if getattr(self._local, "error", None) is None:
            self._local.error = exc

    def take_error(self) -> BaseException | None:
        error, self._local.error = getattr(self._local, "error", None), None
        return error


class _RemoteFile(io.RawIOBase):
    """One open remote file: position, reads through the reader (errors recorded, then re-raised)."""

    def __init__(self, *, reader: RangeReader, url: str, size: int, head: bytes) -> None:
        super().__init__()
        self._reader, self._url, self._size, self._pos = reader, url, size, 0
        self._head = head  # GDAL parses the header in many tiny reads: served here, without locks

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int = -1) -> bytes:
        length = self._size - self._pos if size is None or size < 0 else size
        if self._pos + length <= len(self._head):
            data = self._head[self._pos : self._pos + length]
            self._pos += len(data)
            return data
        try:
            data = self._reader.read(self._url, self._pos, length)
        except Exception as exc:
            self._reader.record(exc)
            raise
        self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def get_byte_ranges(self, offsets: Sequence[int], sizes: Sequence[int]) -> list[bytes]:
        try:
            return self._reader.read_ranges(self._url, offsets, sizes)
        except Exception as exc:
            self._reader.record(exc)
            raise


_ACTIVE = threading.local()


@contextlib.contextmanager
def using(reader: RangeReader | None) -> Iterator[None]:
    """Make ``reader`` the calling thread's range reader inside the block (None: ``/vsicurl/``)."""
    previous = getattr(_ACTIVE, "reader", None)
    _ACTIVE.reader = reader
    try:
        yield
    finally:
        _ACTIVE.reader = previous


def active_reader() -> RangeReader | None:
    """The calling thread's range reader (:func:`using`), or None."""
    return getattr(_ACTIVE, "reader", None)
