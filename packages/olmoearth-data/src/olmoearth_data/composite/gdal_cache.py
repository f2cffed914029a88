"""Forget what GDAL's ``/vsicurl/`` layer remembers about remote files before a read is retried.

GDAL caches, per URL, a file's size, its "does not exist" verdict and fetched byte ranges. After a
connection reset mid-request (an empty reply) it can cache the file as *missing*, so every retry of
the same URL fails at once with "does not exist in the file system" — the retry never reaches the
network. rasterio exposes no binding for GDAL's ``VSICurlClearCache``; it is called through ctypes on
the libgdal rasterio itself loaded (the same library instance, hence the same cache).
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence
from functools import cache

import rasterio._base  # noqa: F401  (loads rasterio's libgdal into the process)

log = logging.getLogger(__name__)


@cache
def _libgdal() -> ctypes.CDLL | None:
    with open("/proc/self/maps") as maps:  # Linux: the path of the libgdal this process mapped
        paths = [line.split()[-1] for line in maps if "libgdal" in line and line.split()[-1].startswith("/")]
    if not paths:
        log.debug("libgdal not found among mapped libraries; /vsicurl/ cache clearing disabled")
        return None
    lib = ctypes.CDLL(paths[0])
    lib.VSICurlClearCache.argtypes = []
    lib.VSICurlClearCache.restype = None
    lib.VSICurlPartialClearCache.argtypes = [ctypes.c_char_p]
    lib.VSICurlPartialClearCache.restype = None
    return lib


def clear_remote_cache(*, urls: Sequence[str] | None = None) -> None:
    """Drop GDAL's ``/vsicurl/`` caches (file properties, missing-file verdicts, cached ranges): of the
    files at ``urls`` (http(s), any query string; their entries only), or of every file (None).

    A retry clears only its own files: a worker's other read threads keep theirs — clearing everything
    under a read in flight could make GDAL misread a good file (seen as "not recognized as being in a
    supported file format" under faults, with 8 reads at once). Best effort: a platform where libgdal
    cannot be located (not Linux) keeps its cache, and a retry there may fail like the first try.
    """
    try:
        lib = _libgdal()
    except OSError:
        return
    if lib is None:
        return
    if urls is None:
        lib.VSICurlClearCache()
        return
    for url in urls:
        lib.VSICurlPartialClearCache(f"/vsicurl/{url.split('?', 1)[0]}".encode())
