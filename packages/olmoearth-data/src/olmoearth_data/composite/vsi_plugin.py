"""One GDAL file-system prefix per process that routes reads to the calling thread's Python opener.

rasterio 1.4 bridges Python openers to GDAL through ``rasterio._vsiopener._opener_registration``: each
registration installs a new GDAL plugin handler under a fresh prefix and removes it on exit. GDAL's
table of handlers is not locked: installing or removing one while another thread is inside GDAL
(opening or reading any file, ``/vsicurl/`` included) is a data race on that table, and a build
registering each file it reads, from many threads at once, made thousands of such changes a shard.
Here the handler is installed once per process (:func:`install`, from the thread that sets up a
build, before its read threads start) and never removed; each thread names the opener its reads go
to (:func:`routed`), and the prefix's single opener (:class:`_Router`) hands every call to it.

rasterio looks registrations up in a ``ContextVar``, i.e. per thread: :func:`routed` puts this
process's registration into the calling thread's registry as well.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from typing import Any

try:  # rasterio 1.4's opener plugin (see the module docstring)
    from rasterio._vsiopener import _OPENER_REGISTRY, _opener_registration
    from rasterio.abc import MultiByteRangeResourceContainer
except ImportError:  # pragma: no cover - other rasterio versions
    _OPENER_REGISTRY = _opener_registration = None
    MultiByteRangeResourceContainer = object  # type: ignore[assignment,misc]

#: The URL the process-wide registration is made for; any URL reads through its prefix.
_ANCHOR_URL = "https://olmoearth-range-reader.invalid/file"


def plugin_supported() -> bool:
    """True when this rasterio has the opener plugin (rasterio 1.4)."""
    return _opener_registration is not None and _OPENER_REGISTRY is not None


class _Router(MultiByteRangeResourceContainer):
    """The prefix's opener: every call goes to the calling thread's opener (:func:`routed`)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def target(self) -> Any:
        target = getattr(self._local, "target", None)
        if target is None:  # GDAL reads a prefixed path outside `routed`: no such file here
            raise FileNotFoundError("no opener routed for this thread")
        return target

    def open(self, path: str, mode: str = "rb", **kwargs: object) -> Any:
        return self.target().open(path, mode, **kwargs)

    def size(self, path: str) -> int:
        return self.target().size(path)

    def isfile(self, path: str) -> bool:
        return self.target().isfile(path)

    def isdir(self, path: str) -> bool:
        return self.target().isdir(path)

    def ls(self, path: str) -> Sequence[str]:
        return self.target().ls(path)

    def mtime(self, path: str) -> int:
        return self.target().mtime(path)

    def rm(self, path: str) -> None:
        self.target().rm(path)


_ROUTER = _Router()
_INSTALL_LOCK = threading.Lock()
_installed: dict[str, Any] = {}  # "prefix", "entries" (the registration's registry items), "keep"


def install() -> str:
    """Install the process's handler once (later calls only return it): the GDAL path prefix that
    reads any URL through the calling thread's routed opener, e.g. ``prefix + "https://host/f.tif"``.

    Call it before read threads start: the first call changes GDAL's handler table.
    """
    if not plugin_supported():
        raise RuntimeError("rasterio's opener plugin (rasterio 1.4) is missing")
    with _INSTALL_LOCK:
        if not _installed:
            before = set(_OPENER_REGISTRY.get({}))
            registration = _opener_registration(_ANCHOR_URL, _ROUTER)
            path = registration.__enter__()  # never exited: the handler lives as long as the process
            registry = _OPENER_REGISTRY.get()
            _installed.update(
                prefix=path[: -len(_ANCHOR_URL)],
                entries={k: v for k, v in registry.items() if k not in before},
                keep=registration,  # holds the handler's user data (kept by the generator's frame)
            )
        return _installed["prefix"]


@contextlib.contextmanager
def routed(opener: Any) -> Iterator[str]:
    """Route the calling thread's reads of the process's prefix to ``opener`` inside the block;
    yields the prefix (:func:`install`)."""
    prefix = install()
    registry = _OPENER_REGISTRY.get(None)
    if registry is None:
        _OPENER_REGISTRY.set(dict(_installed["entries"]))
    elif not _installed["entries"].keys() <= registry.keys():
        registry.update(_installed["entries"])
    previous = getattr(_ROUTER._local, "target", None)
    _ROUTER._local.target = opener
    try:
        yield prefix
    finally:
        _ROUTER._local.target = previous
