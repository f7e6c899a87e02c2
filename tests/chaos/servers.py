"""Redis and PostgreSQL servers of the chaos suite's own, to kill and restart at will.

The machine's shared servers are never touched: each server here runs from the Debian
binaries on a free loopback port with its data in the test's temporary directory, and is
stopped by its own PID (PostgreSQL by pg_ctl on its own data directory).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.support.processes import free_port

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
# initdb and postgres refuse to run as root; nobody exists on every Debian machine.
POSTGRES_USER = "nobody"
START_TIMEOUT_S = 30.0


def _wait(predicate: object, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@dataclass
class RedisServer:
    """redis-server on its own port; `kill` is SIGKILL (no save), `start` comes back."""

    directory: Path
    appendonly: bool
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not on PATH; install Debian's redis-server package")
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [
            binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always" if self.appendonly else "no",
        ]  # fmt: skip
        with open(self.directory / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        _wait(lambda: self._answers(client), START_TIMEOUT_S, f"redis on {self.port}")
        return self

    def kill(self) -> None:
        """SIGKILL: whatever was not written to the append-only file is gone."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    @staticmethod
    def _answers(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False


@dataclass
class PostgresServer:
    """A PostgreSQL 15 cluster in a temporary directory, run as an unprivileged user."""

    directory: Path
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{POSTGRES_USER}@127.0.0.1:{self.port}/postgres"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def init(self) -> PostgresServer:
        if not (POSTGRES_BIN / "initdb").exists():
            pytest.fail(f"no PostgreSQL 15 binaries in {POSTGRES_BIN}; install postgresql-15")
        # Under /tmp itself: pytest's own temporary directories are root's alone (0700).
        self.directory.mkdir(parents=True, exist_ok=True)
        user = pwd.getpwnam(POSTGRES_USER)
        os.chown(self.directory, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", POSTGRES_USER)
        return self

    def start(self) -> PostgresServer:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.directory / "postgres.log"),
            "-o", options, "-w", "-t", str(int(START_TIMEOUT_S)), "start",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        """A fast shutdown: connections are dropped, as in a restart or failover."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def _run(self, binary: str, *args: str) -> None:
        argv = ["runuser", "-u", POSTGRES_USER, "--", str(POSTGRES_BIN / binary), *args]
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=START_TIMEOUT_S + 30, cwd="/"
        )
        if result.returncode != 0:
            error = subprocess.CalledProcessError(
                result.returncode, argv, result.stdout, result.stderr
            )
            # What pg_ctl said, and the server's own log: the directory is gone after the test.
            log = self.directory / "postgres.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            error.add_note(f"{binary}: {result.stdout}{result.stderr}\npostgres.log:\n{tail}")
            raise error
