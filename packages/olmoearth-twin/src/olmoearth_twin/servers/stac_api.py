"""stac-fastapi-pgstac under uvicorn, as a child process on a loopback port.

The API is mounted under PC's prefix ``/api/stac/v1`` (``PREFIX_PATH``), so the twin's STAC URL has the
same shape as ``https://planetarycomputer.microsoft.com/api/stac/v1``. The child gets a parent-death
signal (``setpriv --pdeathsig``, tied to the thread that starts it), so a killed test run leaves no API
process behind; a graceful exit stops it explicitly.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from olmoearth_twin.servers.net import LOOPBACK, free_port, http_ok, wait_until

#: PC's STAC API path.
STAC_PREFIX = "/api/stac/v1"


class StacApiServer:
    """``uvicorn stac_fastapi.pgstac.app:create_app --factory`` with ``PG*`` settings.

    Args:
        pg_env: ``PGHOST``/``PGPORT``/``PGUSER``/``PGPASSWORD`` of the pgstac cluster.
        database: pgstac database name.
        workdir: the process's working folder (stac-fastapi reads a ``.env`` there) and its log file.
        port: TCP port; a free one is picked when ``None``.
    """

    def __init__(
        self, *, pg_env: dict[str, str], database: str, workdir: Path, port: int | None = None
    ) -> None:
        self.pg_env = dict(pg_env)
        self.database = database
        self.workdir = Path(workdir).absolute()
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Root of the STAC API, e.g. ``http://127.0.0.1:41234/api/stac/v1``."""
        return f"http://{LOOPBACK}:{self.port}{STAC_PREFIX}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "stac-api.log"

    def start(self, *, timeout_s: float = 60.0) -> None:
        """Start uvicorn and wait until the landing page answers 200."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(self.pg_env)
        env.update(
            {
                "PGDATABASE": self.database,
                "PREFIX_PATH": STAC_PREFIX,
                "DB_MIN_CONN_SIZE": "1",
                "DB_MAX_CONN_SIZE": "4",
                "NO_PROXY": LOOPBACK,
                "no_proxy": LOOPBACK,
            }
        )
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "stac_fastapi.pgstac.app:create_app",
            "--factory",
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        if shutil.which("setpriv"):
            # If this process dies without stopping us (SIGKILL), the kernel sends the API SIGTERM.
            cmd = ["setpriv", "--pdeathsig", "TERM", "--", *cmd]
        with open(self.log_path, "ab") as log:
            # Own process group, so a Ctrl-C meant for the CLI does not kill the API before we stop it.
            self._proc = subprocess.Popen(
                cmd, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            wait_until(
                check=lambda: http_ok(url=f"{self.url}/"),
                timeout_s=timeout_s,
                what="stac-fastapi",
                alive=lambda: self._proc is not None and self._proc.poll() is None,
            )
        except RuntimeError as err:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{err}; log {self.log_path}:\n{tail}") from None

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)
