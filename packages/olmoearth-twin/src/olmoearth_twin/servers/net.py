"""Loopback networking helpers: free ports, waiting for a server to answer, and network profiles.

A :class:`NetProfile` makes the twin's loopback behave like a real network (per-request latency with
jitter, a per-connection bandwidth cap, a connection set-up cost); the fault proxies
(:mod:`olmoearth_twin.servers.faults`) apply it through a :class:`NetShaper`, under any faults.
"""

from __future__ import annotations

import dataclasses
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class NetProfile:
    """A network between a build worker and the services, imposed by the twin's proxies.

    Attributes:
        latency_s: added to every request before it is forwarded (the round trip a request costs),
            seconds.
        jitter_s: each request's latency is drawn uniformly from ``latency_s ± jitter_s`` (never < 0).
        bandwidth_bps: cap on one connection's answer rate, bytes/s (0: none); an answer of ``n`` bytes
            is held ``n / bandwidth_bps`` seconds before it is sent.
        connect_s: paid once per new connection (TCP + TLS handshakes), seconds.
        seed: seed of the jitter draws (independent of the fault draws).
    """

    latency_s: float = 0.0
    jitter_s: float = 0.0
    bandwidth_bps: float = 0.0
    connect_s: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.latency_s, self.jitter_s, self.bandwidth_bps, self.connect_s) < 0:
            raise ValueError(f"network profile values must be ≥ 0, got {self}")

    @property
    def is_loopback(self) -> bool:
        """True when the profile adds nothing (the twin's plain loopback)."""
        return not (self.latency_s or self.jitter_s or self.bandwidth_bps or self.connect_s)

    def with_latency(self, latency_s: float) -> NetProfile:
        """The same profile at another per-request latency (jitter scaled along, 20 %)."""
        return dataclasses.replace(self, latency_s=latency_s, jitter_s=0.2 * latency_s)


#: Named profiles (``--net`` / ``make … NET=``). ``wan``: a build worker outside Azure talking to
#: Planetary Computer's STAC API and Azure Blob Storage (~50 ms per request, TLS set-up on a new
#: connection, a per-connection throughput a single blob stream sustains); ``far``: another continent.
NET_PROFILES: dict[str, NetProfile] = {
    "loopback": NetProfile(),
    "wan": NetProfile(latency_s=0.050, jitter_s=0.010, bandwidth_bps=25e6, connect_s=0.100),
    "far": NetProfile(latency_s=0.100, jitter_s=0.020, bandwidth_bps=10e6, connect_s=0.250),
}


def net_profile(name: str) -> NetProfile:
    """The named profile of :data:`NET_PROFILES`; raises ValueError naming the choices."""
    if name not in NET_PROFILES:
        raise ValueError(f"unknown network profile {name!r}; choose one of {sorted(NET_PROFILES)}")
    return NET_PROFILES[name]


class NetShaper:
    """Applies a (changeable) :class:`NetProfile` to the requests of one proxy; thread-safe."""

    def __init__(self, profile: NetProfile | None = None) -> None:
        self._lock = threading.Lock()
        self._profile = profile or NetProfile()
        self._rng = random.Random(self._profile.seed)

    @property
    def profile(self) -> NetProfile:
        with self._lock:
            return self._profile

    def set(self, profile: NetProfile) -> None:
        """Use ``profile`` from the next request (and connection) on."""
        with self._lock:
            self._profile = profile
            self._rng = random.Random(profile.seed)

    def on_connect(self) -> None:
        """Block for a new connection's set-up cost."""
        wait = self.profile.connect_s
        if wait > 0:
            time.sleep(wait)

    def on_request(self, *, response_bytes: int) -> None:
        """Block for one request's latency and its answer's transfer time."""
        with self._lock:
            p = self._profile
            jitter = self._rng.uniform(-p.jitter_s, p.jitter_s) if p.jitter_s else 0.0
        wait = max(p.latency_s + jitter, 0.0)
        if p.bandwidth_bps:
            wait += response_bytes / p.bandwidth_bps
        if wait > 0:
            time.sleep(wait)
