"""Fault injection: a loopback HTTP proxy that makes the twin misbehave the way PC does under load.

PC's STAC API and Azure Blob Storage answer a fraction of requests with 429 (``Retry-After``), 503, a
dropped connection, or slowly. A pipeline must survive that, so its tests need a server that does it
on purpose, at a seeded rate::

    with Twin(catalog=catalog, faults=FaultConfig(rate=0.3, seed=1)) as twin:
        twin.stac_url  # goes through the proxy; twin.direct_stac_url does not

Every request draws once from the seeded generator (under a lock, so a sequential client sees the same
faults for the same seed): with probability ``rate`` one of ``kinds`` is injected, chosen uniformly.
``slow`` delays the request by ``slow_s`` and then forwards it, so it only fails clients whose read
timeout is shorter. Otherwise the request (method, path, query, headers including ``Range`` and
``Host``, body) is forwarded unchanged to the upstream and the answer (status, headers, body) returned
as is. ``Host`` is kept so stac-fastapi writes the proxy's address into its links and a client that
follows them stays behind the proxy.

Outages: besides the random draws, a proxy can fail *every* request on purpose, for a while or until
told otherwise — a service that is down rather than flaky::

    proxy = FaultProxy(upstream=twin.direct_assets_url, config=FaultConfig(rate=0.0))
    proxy.start()
    proxy.set_outage("503", seconds=30)   # 503 for 30 s, then requests pass again
    proxy.set_outage("401")               # 401 (APIM's missing-key answer) until clear_outage()
    proxy.clear_outage()

Kinds: :data:`OUTAGE_KINDS` — an HTTP status (``401``, ``403``, ``429``, ``500``, ``502``, ``503``,
``504``) or ``reset`` (every connection dropped). ``stats.injected`` counts them as ``outage-<kind>``.

Network: a proxy also imposes a :class:`~olmoearth_twin.servers.net.NetProfile` (latency with
jitter per request, a bandwidth cap per connection, a set-up cost per new connection) on every answer,
faulty or not, so faults keep working on top of a slow network. :meth:`FaultProxy.set_net` changes it
while running (a benchmark sweeps latencies on one twin). ``stats.bytes_out`` counts the body bytes sent.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from olmoearth_twin.servers.http_thread import BackgroundHTTPServer, QuietHandler
from olmoearth_twin.servers.net import NetProfile, NetShaper

#: Kinds of fault the proxy can inject.
FAULT_KINDS = ("429", "503", "reset", "slow")
#: Kinds of outage (every request fails) a proxy can be put in.
OUTAGE_KINDS = ("401", "403", "429", "500", "502", "503", "504", "reset")
_OUTAGE_BODIES = {
    "401": b'{"statusCode": 401, "message": "Access denied due to invalid subscription key."}',
    "403": b'{"statusCode": 403, "message": "Forbidden."}',
    "429": b'{"statusCode": 429, "message": "Rate limit is exceeded. Try again later."}',
}
# Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded; the body is re-sent with its own length.
_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
}


@dataclass(frozen=True)
class FaultConfig:
    """What to inject and how often.

    Attributes:
        rate: probability in [0, 1] that a request gets a fault.
        seed: seed of the fault draws (same seed + same request order → same faults).
        kinds: subset of :data:`FAULT_KINDS` to choose from.
        slow_s: delay of a ``slow`` fault, seconds.
        retry_after_s: ``Retry-After`` value of a 429 (PC's APIM sends whole seconds).
    """

    rate: float = 0.3
    seed: int = 0
    kinds: Sequence[str] = FAULT_KINDS
    slow_s: float = 0.5
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be in [0, 1], got {self.rate}")
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"kinds must be a non-empty subset of {FAULT_KINDS}, got {tuple(self.kinds)}")


@dataclass
class FaultStats:
    """Counters of one proxy: requests seen and faults injected per kind."""

    requests: int = 0
    injected: dict[str, int] = field(default_factory=dict)
    bytes_out: int = 0
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record_bytes(self, n: int) -> None:
        with self._lock:
            self.bytes_out += n

    def record_connection(self) -> None:
        with self._lock:
            self.connections += 1

    def record(self, kind: str | None) -> None:
        with self._lock:
            self.requests += 1
            if kind is not None:
                self.injected[kind] = self.injected.get(kind, 0) + 1


class _OutageState:
    """The outage a proxy is in: a kind and an end (monotonic seconds; None: until cleared)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kind: str | None = None
        self._until: float | None = None

    def set(self, kind: str, seconds: float | None) -> None:
        if kind not in OUTAGE_KINDS:
            raise ValueError(f"outage kind must be one of {OUTAGE_KINDS}, got {kind!r}")
        if seconds is not None and seconds <= 0:
            raise ValueError(f"seconds must be > 0 (or None: until cleared), got {seconds}")
        with self._lock:
            self._kind = kind
            self._until = None if seconds is None else time.monotonic() + seconds

    def clear(self) -> None:
        with self._lock:
            self._kind, self._until = None, None

    def current(self) -> str | None:
        with self._lock:
            if self._kind is not None and self._until is not None and time.monotonic() >= self._until:
                self._kind, self._until = None, None
            return self._kind


class _Dice:
    """The seeded fault draws, one per request, serialised so the sequence is reproducible."""

    def __init__(self, config: FaultConfig) -> None:
        self._config = config
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()

    def draw(self) -> str | None:
        with self._lock:
            hit = self._rng.random() < self._config.rate
            kind = self._rng.choice(tuple(self._config.kinds))  # drawn always: keeps the sequence fixed
        return kind if hit else None


def _make_handler(
    *, upstream: str, config: FaultConfig, stats: FaultStats, outage: _OutageState, shaper: NetShaper
) -> type[QuietHandler]:
    target = urlsplit(upstream)
    host, port = target.hostname or "127.0.0.1", target.port or 80
    dice = _Dice(config)

    class FaultHandler(QuietHandler):
        def setup(self) -> None:
            super().setup()
            stats.record_connection()
            shaper.on_connect()

        def send_body(self, *, status: int, body: bytes, content_type: str, head_only: bool = False,
                      headers: dict[str, str] | None = None) -> None:  # fmt: skip
            shaper.on_request(response_bytes=0 if head_only else len(body))
            super().send_body(status=status, body=body, content_type=content_type, head_only=head_only,
                              headers=headers)  # fmt: skip

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._handle()

        def do_HEAD(self) -> None:  # noqa: N802
            self._handle()

        def do_POST(self) -> None:  # noqa: N802
            self._handle()

        def do_PUT(self) -> None:  # noqa: N802
            self._handle()

        def do_DELETE(self) -> None:  # noqa: N802
            self._handle()

        def do_OPTIONS(self) -> None:  # noqa: N802
            self._handle()

        def _read_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length > 0 else b""

        def _reset(self) -> None:
            # SO_LINGER 0 makes close() send RST: the client sees "connection reset" / "remote end
            # closed connection without response", as when a load balancer drops a connection.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True

        def _handle(self) -> None:
            body = self._read_body()
            head_only = self.command == "HEAD"
            down = outage.current()
            if down is not None:
                stats.record(f"outage-{down}")
                if down == "reset":
                    self._reset()
                    return
                self.send_body(
                    status=int(down),
                    body=_OUTAGE_BODIES.get(down, b"Service Unavailable"),
                    content_type="application/json" if down in _OUTAGE_BODIES else "text/plain",
                    head_only=head_only,
                    headers={"Retry-After": str(config.retry_after_s)} if down == "429" else None,
                )
                return
            kind = dice.draw()
            stats.record(kind)
            if kind == "reset":
                shaper.on_request(response_bytes=0)
                self._reset()
                return
            if kind == "429":
                self.send_body(
                    status=429,
                    body=b'{"statusCode": 429, "message": "Rate limit is exceeded. Try again later."}',
                    content_type="application/json",
                    head_only=head_only,
                    headers={"Retry-After": str(config.retry_after_s)},
                )
                return
            if kind == "503":
                self.send_body(
                    status=503,
                    body=b"Service Unavailable",
                    content_type="text/plain",
                    head_only=head_only,
                )
                return
            if kind == "slow":
                time.sleep(config.slow_s)
            self._forward(body=body, head_only=head_only)

        def _forward(self, *, body: bytes, head_only: bool) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            conn = http.client.HTTPConnection(host, port, timeout=120)
            try:
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                payload = response.read()  # small on the twin: JSON pages, COG ranges
                shaper.on_request(response_bytes=0 if head_only else len(payload))
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in _HOP:
                        self.send_header(key, value)
                # A HEAD answer keeps the upstream's Content-Length (the size of what GET would send).
                length = response.getheader("Content-Length") if head_only else str(len(payload))
                if length is not None:
                    self.send_header("Content-Length", length)
                self.end_headers()
                if not head_only:
                    self.wfile.write(payload)
                    stats.record_bytes(len(payload))
            finally:
                conn.close()

    return FaultHandler


class FaultProxy:
    """A fault-injecting HTTP proxy in front of ``upstream`` (``http://host:port``), on loopback.

    Args:
        upstream: base URL of the real server (only scheme, host and port are used).
        config: what to inject.
        net: the network imposed on every answer (None: loopback).

    Attributes:
        url: ``http://127.0.0.1:<port>``, the proxy's base URL (valid after :meth:`start`).
        stats: :class:`FaultStats` of this proxy.
    """

    def __init__(self, *, upstream: str, config: FaultConfig, net: NetProfile | None = None) -> None:
        self.stats = FaultStats()
        self._outage = _OutageState()
        self._shaper = NetShaper(net)
        handler = _make_handler(
            upstream=upstream, config=config, stats=self.stats, outage=self._outage, shaper=self._shaper
        )
        self._server = BackgroundHTTPServer(handler=handler)

    @property
    def net(self) -> NetProfile:
        """The network profile in force."""
        return self._shaper.profile

    def set_net(self, profile: NetProfile) -> None:
        """Impose ``profile`` from the next request on (connections already open keep no set-up debt)."""
        self._shaper.set(profile)

    def set_outage(self, kind: str, *, seconds: float | None = None) -> None:
        """Fail every request with ``kind`` (:data:`OUTAGE_KINDS`) for ``seconds`` (None: until
        :meth:`clear_outage`); the random faults resume afterwards."""
        self._outage.set(kind, seconds)

    def clear_outage(self) -> None:
        """End the outage now."""
        self._outage.clear()

    @property
    def outage(self) -> str | None:
        """The outage kind in force, or None."""
        return self._outage.current()

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()
