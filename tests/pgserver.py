"""A real PostgreSQL server for the tests: started in a temporary folder on a free loopback
port, stopped after.

PostgreSQL refuses to run as root: when the tests run as root the server's files belong to an
unprivileged user (``nobody``) and ``initdb``/``pg_ctl`` run as that user. The binaries are
found on ``PATH``, then by ``pg_config --bindir``, then in ``/usr/lib/postgresql/*/bin`` (where
Debian and Ubuntu put them). Startup is kept quick: ``initdb --no-sync`` and ``fsync=off``
(a test server need not survive a power cut). Each test gets its own schema
(:meth:`PgServer.fresh_url`).
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["PASSWORD", "SKIP_REASON", "PgServer", "find_bindir"]

#: the test server's superuser password (password auth over TCP: the URL, or PGPASSWORD)
PASSWORD = "pg-test-secret-Zx81"
#: why the PostgreSQL tests skip, and how to run them
SKIP_REASON = (
    "no PostgreSQL server binaries (initdb, pg_ctl) on PATH, by pg_config --bindir "
    "or in /usr/lib/postgresql/*/bin: install PostgreSQL (e.g. apt-get install "
    "postgresql) and psycopg (pip install -e '.[dev]') to run the PostgreSQL tests"
)


def find_bindir() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``, or None when there is none."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    config = shutil.which("pg_config")
    if config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if (Path(out) / "initdb").exists():
                return Path(out)
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One PostgreSQL server of the tests (:meth:`start`, :meth:`stop`)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.folder = Path(tempfile.mkdtemp(prefix="sa-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self._as: dict[str, Any] = {}
        self._schemas = itertools.count(1)
        if os.geteuid() == 0:
            user = pwd.getpwnam("nobody")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._as = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}

    @property
    def url(self) -> str:
        """The superuser's URL over TCP, password included."""
        return f"postgresql://postgres:{quote(PASSWORD)}@127.0.0.1:{self.port}/postgres"

    @property
    def socket_url(self) -> str:
        """The superuser's URL over the Unix socket (no password: local trust)."""
        return f"postgresql://postgres@/postgres?host={quote(str(self.folder))}&port={self.port}"

    def _run(self, *args: str) -> None:
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        done = subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.folder,
            timeout=120,
            check=False,
            **self._as,
        )
        if done.returncode:
            raise RuntimeError(f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")

    def start(self, *, durable: bool = False) -> PgServer:
        """initdb and start the server (about a second); ``durable``: with PostgreSQL's
        default fsync and synchronous commit (for benchmarks against SQLite's FULL sync)."""
        pwfile = self.folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._as:
            os.chown(pwfile, self._as["user"], self._as["group"])
        self._run(
            "initdb",
            "--no-sync",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--locale=C",
            "--encoding=UTF8",
        )
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=50"
        )
        if not durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def stop(self) -> None:
        """Stop the server at once and delete its files."""
        with contextlib.suppress(RuntimeError, subprocess.SubprocessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def fresh_url(self, prefix: str = "t") -> str:
        """The URL of a new, empty schema of its own (the store's tables go there)."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(self._schemas)}_{int(time.time() * 1000) % 100000}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url}?options=-csearch_path%3D{name}"
