"""Loopback networking helpers: free ports and waiting for a server to answer."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable

LOOPBACK = "127.0.0.1"


def free_port(*, host: str = LOOPBACK) -> int:
    """A TCP port that was free on ``host`` a moment ago (the OS picks it; a race is possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(
    *, check: Callable[[], bool], timeout_s: float, what: str, alive: Callable[[], bool] | None = None
) -> None:
    """Poll ``check`` every 50 ms until it returns True.

    Raises:
        RuntimeError: if ``alive`` reports the process died, or ``timeout_s`` passes.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return
        if alive is not None and not alive():
            raise RuntimeError(f"{what} exited before it became ready")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not become ready within {timeout_s:.0f} s")
        time.sleep(0.05)


def http_ok(*, url: str, timeout_s: float = 1.0) -> bool:
    """Whether a GET of ``url`` answers 2xx (no proxy: the twin lives on loopback)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False
