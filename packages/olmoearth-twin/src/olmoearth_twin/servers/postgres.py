"""A throwaway PostgreSQL cluster on a loopback port (``initdb`` + ``pg_ctl``), rebuilt on every start.

Running as root: ``initdb`` and ``postgres`` refuse to run as root, so every PostgreSQL binary is run
through ``setpriv`` as the unprivileged system user :data:`DEFAULT_OS_USER` (created with ``useradd``
on first use; override with ``$OLMOEARTH_TWIN_PG_USER``), and the cluster directory is ``chown``-ed to
it. ``setpriv`` was chosen over ``su``/``runuser`` because it only switches uid/gid: no PAM session, no
login shell, and the environment we build is passed through unchanged. That user must be able to
traverse every parent folder of the twin's root (a folder under ``/tmp`` made with mode 0755 is fine;
pytest's ``/tmp/pytest-of-root`` is mode 0700 and is not). When not root, the binaries run as the caller.

Durability is switched off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the cluster only
ever holds a generated catalogue and is recreated from scratch at the next start.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from olmoearth_twin.servers.net import LOOPBACK, free_port

#: OS user that owns and runs the cluster when the twin is started as root.
DEFAULT_OS_USER = "olmoearth-twin"
OS_USER_ENV = "OLMOEARTH_TWIN_PG_USER"
#: Database superuser created by initdb (trust auth; any password is accepted).
DB_SUPERUSER = "postgres"
DB_PASSWORD = "twin"
# A unix socket path must fit in sockaddr_un (108 bytes incl. the ".s.PGSQL.<port>" file name).
_MAX_SOCKET_DIR_LEN = 90


def find_pg_bindir() -> Path:
    """Directory holding ``initdb``/``pg_ctl``: newest ``/usr/lib/postgresql/*/bin``, else ``$PATH``."""
    candidates = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "initdb").is_file()]
    if candidates:
        return max(candidates, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL binaries not found (no /usr/lib/postgresql/*/bin/initdb and no initdb on PATH); "
        "run `bash scripts/system-deps.sh` or install postgresql + postgis"
    )


@dataclass(frozen=True)
class _OsUser:
    name: str
    uid: int
    gid: int


def _ensure_os_user(name: str) -> _OsUser:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        cmd = [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        try:  # another process may have created it concurrently: look again before failing
            entry = pwd.getpwnam(name)
        except KeyError:
            raise RuntimeError(f"could not create OS user {name!r}: {result.stderr.strip()}") from None
    return _OsUser(name=name, uid=entry.pw_uid, gid=entry.pw_gid)


def _is_traversable(path: Path, user: _OsUser) -> bool:
    try:
        _check_traversable(path, user)
    except RuntimeError:
        return False
    return True


def _check_traversable(path: Path, user: _OsUser) -> None:
    for parent in [path, *path.parents]:
        st = parent.stat()
        if st.st_uid == user.uid:
            continue
        bit = stat.S_IXGRP if st.st_gid == user.gid else stat.S_IXOTH
        if not st.st_mode & bit:
            raise RuntimeError(
                f"PostgreSQL runs as the unprivileged user {user.name!r} (we are root), which cannot "
                f"enter {parent} (mode {oct(st.st_mode & 0o777)}); put the twin root somewhere it can "
                "traverse, e.g. under /tmp or the repository's build/ folder"
            )


def _clean_env() -> dict[str, str]:
    # Inherited PG* variables (PGDATA, PGHOST...) would redirect initdb/pg_ctl.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


class PostgresServer:
    """One PostgreSQL cluster under ``<root>/data`` listening on ``127.0.0.1:<port>``.

    Args:
        root: folder for the cluster (``data/``, ``run/`` socket dir, ``postgres.log``); wiped on start.
        port: TCP port; a free one is picked when ``None``.
    """

    def __init__(self, *, root: Path, port: int | None = None) -> None:
        self.root = Path(root).absolute()
        self.port = port or free_port()
        self.bindir = find_pg_bindir()
        self._user: _OsUser | None = None
        self._private_root = False
        if os.geteuid() == 0:
            self._user = _ensure_os_user(os.environ.get(OS_USER_ENV, DEFAULT_OS_USER))
            ancestor = next(p for p in [self.root, *self.root.parents] if p.exists())
            if not _is_traversable(ancestor, self._user):
                # e.g. a checkout under a 0700 mktemp folder: the unprivileged server user cannot reach
                # it, so the cluster lives in a private, traversable temp folder removed on stop.
                self.root = Path(tempfile.mkdtemp(prefix="olmoearth-twin-pg-"))
                os.chmod(self.root, 0o755)
                self._private_root = True
        self._running = False

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    @property
    def env(self) -> dict[str, str]:
        """libpq variables for clients (``PGPASSWORD`` must be set even though auth is trust)."""
        return {
            "PGHOST": LOOPBACK,
            "PGPORT": str(self.port),
            "PGUSER": DB_SUPERUSER,
            "PGPASSWORD": DB_PASSWORD,
        }

    def dsn(self, *, database: str) -> str:
        """``postgresql://`` connection string for ``database`` over TCP."""
        return f"postgresql://{DB_SUPERUSER}:{DB_PASSWORD}@{LOOPBACK}:{self.port}/{database}"

    def _run(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._user is not None:
            cmd = [
                "setpriv",
                f"--reuid={self._user.uid}",
                f"--regid={self._user.gid}",
                "--clear-groups",
                *cmd,
            ]
        result = subprocess.run(
            cmd, capture_output=True, text=True, env=_clean_env(), check=False, timeout=120
        )
        if check and result.returncode != 0:
            log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}{result.stderr}\n{log}"
            )
        return result

    def _prepare_root(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            # A previous run died without stopping its server: stop it before wiping the folder.
            self._run(["pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"], check=False)
        shutil.rmtree(self.root, ignore_errors=True)
        (self.root / "run").mkdir(parents=True)
        if self._user is not None:
            for path in (self.root, self.root / "run"):
                os.chown(path, self._user.uid, self._user.gid)
            _check_traversable(self.root, self._user)

    def start(self) -> None:
        """initdb (trust auth, UTF8, C locale) and ``pg_ctl start -w``; retries on a taken port."""
        self._prepare_root()
        self._run(
            [
                "initdb",
                "-D",
                str(self.data_dir),
                "-A",
                "trust",
                "-U",
                DB_SUPERUSER,
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]
        )
        socket_dir = str(self.root / "run")
        if len(socket_dir) > _MAX_SOCKET_DIR_LEN:
            socket_dir = ""  # clients use TCP anyway; a too-long socket path would stop postgres starting
        for attempt in range(3):
            options = " ".join(
                [
                    f"-c listen_addresses={LOOPBACK}",
                    f"-p {self.port}",
                    f"-c unix_socket_directories={shlex.quote(socket_dir)}",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c max_connections=60",
                    "-c shared_buffers=64MB",
                ]
            )
            result = self._run(
                [
                    "pg_ctl",
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_path),
                    "-w",
                    "-t",
                    "60",
                    "-o",
                    options,
                    "start",
                ],
                check=attempt == 2,
            )
            if result.returncode == 0:
                self._running = True
                return
            self.port = free_port()

    def stop(self) -> None:
        """Fast shutdown (then immediate if that fails); safe to call twice."""
        if not self._running:
            return
        result = self._run(
            ["pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop"], check=False
        )
        if result.returncode != 0:
            self._run(["pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"], check=False)
        self._running = False
        if self._private_root:
            shutil.rmtree(self.root, ignore_errors=True)
