"""The range reader against a real HTTP server on loopback: one request per file open, GDAL reads the
same pixels as through ``/vsicurl/``, failures keep their meaning (retried, or the file's fault)."""

from __future__ import annotations

import concurrent.futures
import ctypes
import http.server
import itertools
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import rasterio
import requests
from rasterio.transform import from_origin

from olmoearth_data.composite.gdal_cache import _libgdal
from olmoearth_data.composite.range_reads import RangeReader, RangeReadError
from olmoearth_data.composite.read_errors import is_transient
from olmoearth_data.gdal_env import gdal_options
from olmoearth_data.stac.retry import RetryPolicy

SECRET = "sig=SECRET-TOKEN"


@dataclass
class Plan:
    """What the server does: requests seen, and failures to answer the next requests with."""

    requests: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # "503", "404", "reset", "short", "no-range"


def _handler(folder: Path, plan: Plan) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _serve(self, body: bool) -> None:
            plan.requests.append(f"{self.command} {self.headers.get('Range', '-')}")
            failure = plan.failures.pop(0) if plan.failures else None
            if failure == "reset":  # drop the connection without an answer
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if failure in ("503", "404"):
                self.send_response(int(failure))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = (folder / self.path.split("?")[0].lstrip("/")).read_bytes()
            ranged = self.headers.get("Range")
            if ranged and failure != "no-range":
                start, end = (int(v) for v in ranged.split("=")[1].split("-"))
                chunk = data[start : min(end + 1, len(data))]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{start + len(chunk) - 1}/{len(data)}")
            else:
                chunk = data
                self.send_response(200)
            if failure == "short":
                self.send_header("Content-Length", str(len(chunk) // 2))
                self.end_headers()
                self.wfile.write(chunk[: len(chunk) // 2])
                return
            self.send_header("Content-Length", str(len(chunk)))
            self.end_headers()
            if body:
                self.wfile.write(chunk)

        def do_GET(self) -> None:
            self._serve(body=True)

        def do_HEAD(self) -> None:
            self._serve(body=False)

    return Handler


@pytest.fixture(scope="module")
def cog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("range-cog")
    rng = np.random.default_rng(0)
    data = rng.integers(0, 10_000, size=(1024, 1024), dtype=np.uint16)
    profile = dict(
        driver="COG", width=1024, height=1024, count=1, dtype="uint16", crs="EPSG:32610",
        transform=from_origin(500_000, 4_200_000, 10, 10), blocksize=256, compress="deflate",
    )  # fmt: skip
    with rasterio.open(folder / "band.tif", "w", **profile) as dst:
        dst.write(data, 1)
    return folder


@pytest.fixture
def server(cog: Path) -> Iterator[tuple[str, Plan]]:
    plan = Plan()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(cog, plan))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/band.tif?{SECRET}", plan
    finally:
        httpd.shutdown()
        httpd.server_close()


def _window(path: str) -> np.ndarray:
    with rasterio.Env(**gdal_options(retry=None, cloud=True)), rasterio.open(path) as ds:
        return ds.read(1, window=((300, 556), (600, 856)))


def test_one_request_opens_a_file_and_pixels_equal_vsicurl(server: tuple[str, Plan], cog: Path) -> None:
    url, plan = server
    reader = RangeReader(retry=None)
    with reader.paths() as to_path:
        got = _window(to_path(url))
    ranged = list(plan.requests)
    assert ranged[0] == "GET bytes=0-65535"  # the header request also gave the size: no HEAD
    assert not any(r.startswith("HEAD") for r in ranged), ranged
    with rasterio.open(cog / "band.tif") as ds:
        expected = ds.read(1, window=((300, 556), (600, 856)))
    np.testing.assert_array_equal(got, expected)
    plan.requests.clear()
    with reader.paths() as to_path:  # opened again (the CRS check, then odc-stac): the header is kept
        np.testing.assert_array_equal(_window(to_path(url)), expected)
    assert "GET bytes=0-65535" not in plan.requests
    plan.requests.clear()
    np.testing.assert_array_equal(_window(url), expected)  # GDAL's own /vsicurl/, for the count
    assert len(plan.requests) >= len(ranged) + 1, (plan.requests, ranged)


@pytest.mark.parametrize("failure", ["503", "reset", "short"])
def test_transient_failures_are_retried_per_request(server: tuple[str, Plan], failure: str) -> None:
    url, plan = server
    plan.failures = [failure, failure]
    reader = RangeReader(retry=RetryPolicy(attempts=3, backoff_s=0.001))
    assert reader.size(url) > 65536
    assert len(plan.requests) == 3


def test_a_server_that_ignores_ranges_still_reads(server: tuple[str, Plan], cog: Path) -> None:
    url, plan = server
    plan.failures = ["no-range"]
    reader = RangeReader(retry=None)
    assert reader.size(url) == (cog / "band.tif").stat().st_size
    assert reader.read(url, 100_000, 10) == (cog / "band.tif").read_bytes()[100_000:100_010]
    assert len(plan.requests) == 1  # the whole file came with the first answer: kept, not fetched again


def test_failures_keep_their_meaning_and_never_name_the_token(server: tuple[str, Plan]) -> None:
    url, plan = server
    reader = RangeReader(retry=RetryPolicy(attempts=2, backoff_s=0.001))
    plan.failures = ["404"]
    with pytest.raises(requests.HTTPError) as missing:
        reader.size(url)
    assert not is_transient(missing.value) and SECRET not in str(missing.value)
    assert len(plan.requests) == 1  # a 404 is the file's fault: not retried
    plan.failures = ["reset"] * 3
    with pytest.raises(RangeReadError) as dropped:
        reader.size(url)
    assert is_transient(dropped.value) and SECRET not in str(dropped.value)
    assert "band.tif" in str(dropped.value)  # failing_hrefs finds the file by its name


def test_gdal_failure_is_raised_as_the_request_that_failed(server: tuple[str, Plan]) -> None:
    url, plan = server
    reader = RangeReader(retry=None)
    reader.size(url)  # the header is kept; the pixel request fails
    plan.failures = ["503"] * 5
    with reader.paths() as to_path, pytest.raises(rasterio.errors.RasterioIOError):
        _window(to_path(url))
    error = reader.take_error()
    assert isinstance(error, requests.HTTPError) and error.response.status_code == 503
    assert is_transient(error)


def _gdal_prefixes() -> list[str]:
    """GDAL's table of file-system prefixes, read from the libgdal rasterio loaded."""
    library = _libgdal()
    assert library is not None, "libgdal is not mapped into this process"
    library.VSIGetFileSystemsPrefixes.restype = ctypes.POINTER(ctypes.c_char_p)
    listed = library.VSIGetFileSystemsPrefixes()
    prefixes = list(itertools.takewhile(bool, (listed[i] for i in itertools.count())))
    library.CSLDestroy(listed)
    return [p.decode() for p in prefixes]


def test_reads_from_many_threads_leave_gdals_handler_table_alone(server: tuple[str, Plan], cog: Path) -> None:
    """GDAL's handler table is not locked: the reader installs its prefix once, when it is created,
    and no read changes the table again — while threads are inside GDAL, through the reader or
    through ``/vsicurl/``, side by side."""
    url, _ = server
    reader = RangeReader(retry=None)
    before = _gdal_prefixes()
    assert sum("opener" in p for p in before) == 1
    with rasterio.open(cog / "band.tif") as ds:
        expected = ds.read(1, window=((300, 556), (600, 856)))

    def read(k: int) -> list[str]:
        seen = []
        with reader.paths() as to_path:
            for j in range(3):
                path = to_path(f"{url}&file={k}-{j}")  # a new file to the reader each time
                np.testing.assert_array_equal(_window(path), expected)
                seen.append(path)
            assert _gdal_prefixes() == before  # inside the block too: nothing registered per file
        return seen

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        plain = pool.submit(lambda: [_window(f"{url}&plain={i}") for i in range(3)])
        paths = [p for seen in pool.map(read, range(8)) for p in seen]
        assert all(np.array_equal(w, expected) for w in plain.result())
    assert len({p.partition("http://")[0] for p in paths}) == 1  # one prefix for every file and thread
    assert _gdal_prefixes() == before
