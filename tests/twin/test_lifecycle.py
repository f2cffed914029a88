"""A Twin stops every server it started, also when the block inside it raises."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from olmoearth_twin import Twin

pytestmark = pytest.mark.twin


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_everything_stops_after_an_exception() -> None:
    root = Path(tempfile.mkdtemp(prefix="olmoearth-twin-lifecycle-"))
    os.chmod(root, 0o755)
    try:
        with pytest.raises(RuntimeError, match="boom"), Twin(root=root) as twin:
            ports = [urlsplit(u).port for u in (twin.stac_url, twin.sas_url, twin.assets_url, twin.dsn)]
            assert all(_listening(p) for p in ports)
            assert twin.startup_s < 30
            raise RuntimeError("boom")
        assert not any(_listening(p) for p in ports)
        assert not (root / "pg" / "data" / "postmaster.pid").exists()
        with pytest.raises(RuntimeError, match="not running"):
            _ = Twin(root=root).stac_url
    finally:
        shutil.rmtree(root, ignore_errors=True)
