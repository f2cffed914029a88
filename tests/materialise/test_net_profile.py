"""The twin's network profile (issue #15): the proxy adds the latency, set-up and transfer time it says,
under its faults, and the build's read pool keeps the output of the sequential path's order."""

from __future__ import annotations

import http.client
import time

import pytest

from olmoearth_twin.servers.faults import FaultConfig, FaultProxy
from olmoearth_twin.servers.http_thread import BackgroundHTTPServer, QuietHandler
from olmoearth_twin.servers.net import NET_PROFILES, NetProfile, net_profile

BODY = b"x" * 200_000


class _Echo(QuietHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_body(status=200, body=BODY, content_type="application/octet-stream")


@pytest.fixture(scope="module")
def upstream():
    server = BackgroundHTTPServer(handler=_Echo)
    server.start()
    yield server
    server.stop()


def _timed_gets(url: str, n: int) -> list[float]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    times = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            conn.request("GET", "/blob")
            assert conn.getresponse().read() == BODY
            times.append(time.perf_counter() - t0)
    finally:
        conn.close()
    return times


def test_latency_setup_and_bandwidth_are_paid_per_request_and_connection(upstream) -> None:
    net = NetProfile(latency_s=0.03, jitter_s=0.005, connect_s=0.05, bandwidth_bps=10e6)
    proxy = FaultProxy(upstream=upstream.url, config=FaultConfig(rate=0.0), net=net)
    proxy.start()
    try:
        first, *rest = _timed_gets(proxy.url, 4)
        transfer = len(BODY) / net.bandwidth_bps  # 20 ms
        assert first >= net.connect_s + net.latency_s - net.jitter_s + transfer
        assert all(net.latency_s - net.jitter_s + transfer <= t < first for t in rest), (first, rest)
        assert proxy.stats.connections == 1 and proxy.stats.requests == 4
        assert proxy.stats.bytes_out == 4 * len(BODY)
        proxy.set_net(NetProfile())  # back to loopback while running
        assert max(_timed_gets(proxy.url, 3)) < net.latency_s
    finally:
        proxy.stop()


def test_faults_still_happen_on_a_slow_network(upstream) -> None:
    proxy = FaultProxy(upstream=upstream.url, config=FaultConfig(rate=1.0, kinds=("503",), seed=1),
                       net=NetProfile(latency_s=0.02))  # fmt: skip
    proxy.start()
    try:
        host, port = proxy.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        t0 = time.perf_counter()
        conn.request("GET", "/blob")
        assert conn.getresponse().status == 503
        assert time.perf_counter() - t0 >= 0.02
        conn.close()
        assert proxy.stats.injected == {"503": 1}
    finally:
        proxy.stop()


def test_named_profiles() -> None:
    assert net_profile("wan") == NET_PROFILES["wan"] and not NET_PROFILES["wan"].is_loopback
    assert NET_PROFILES["loopback"].is_loopback
    with pytest.raises(ValueError, match="wan"):
        net_profile("moon")
    with pytest.raises(ValueError, match="≥ 0"):
        NetProfile(latency_s=-1)
