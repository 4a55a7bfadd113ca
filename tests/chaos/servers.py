"""A fault test's own Redis and PostgreSQL: child processes on free ports in a temporary directory.

A fault test kills and stops these, never the machine's own services: each object signals only the
process it started (Redis) or the cluster in its own data directory (PostgreSQL, through `pg_ctl -D`).
PostgreSQL refuses to run as root, so when the tests run as root its programs run as the `postgres` user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_program(name: str) -> str | None:
    """The path of a PostgreSQL server program (Debian keeps them out of PATH, under /usr/lib/postgresql)."""
    for directory in PG_BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    return shutil.which(name)


def missing_programs() -> str | None:
    """Why the own-servers tests cannot run here, or None when they can."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed"
    if pg_program("initdb") is None or pg_program("pg_ctl") is None:
        return "PostgreSQL's initdb and pg_ctl are not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run PostgreSQL as"
    return None


def _wait_for_port(port: int, alive: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if alive is not None and alive.poll() is not None:
            raise RuntimeError(f"the server on port {port} exited with {alive.returncode}")
        time.sleep(0.05)  # waiting for a process to listen: there is no event to wait on
    raise TimeoutError(f"nothing listens on port {port} after {START_TIMEOUT_S} s")


class OwnRedis:
    """`redis-server --port N`, started and killed at will, always on the same port (clients reconnect to it)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, self.process)

    def kill(self) -> None:
        """SIGKILL: Redis vanishes mid-traffic, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> OwnRedis:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.kill()


class OwnPostgres:
    """A PostgreSQL cluster of its own: `initdb` in a temporary directory, `pg_ctl start/stop` on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._dir = Path(tempfile.mkdtemp(prefix="kefu-pg-"))
        self.data = self._dir / "data"
        self.log = self._dir / "server.log"
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        command = list(args)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def _pg_ctl(self, *args: str) -> None:
        pg_ctl = pg_program("pg_ctl")
        assert pg_ctl is not None
        self._run(pg_ctl, "-D", str(self.data), "-l", str(self.log), *args)

    def init(self) -> None:
        if self._as_postgres:
            shutil.chown(self._dir, "postgres", "postgres")
        initdb = pg_program("initdb")
        assert initdb is not None
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._pg_ctl("-w", "-o", options, "start")
        _wait_for_port(self.port)

    def stop(self) -> None:
        """`pg_ctl stop -m fast`: every session is ended and new ones are refused until `start`."""
        if (self.data / "postmaster.pid").exists():
            self._pg_ctl("-w", "-m", "fast", "stop")

    def __enter__(self) -> OwnPostgres:
        self.init()
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
