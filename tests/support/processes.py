"""Real worker, API and scheduler processes for lifecycle tests; always stopped by PID."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
STOP_TIMEOUT_S = 15.0


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


# Ports handed out in this run; a service may not have bound its port yet when the next
# one is chosen, so the probe alone cannot tell that it is taken.
_handed_out: set[int] = set()


def proc_stat_fields(pid: int | str) -> list[str]:
    """/proc/PID/stat after the command name (which may hold spaces): the state first.

    Raises OSError (FileNotFoundError once the process is gone).
    """
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def free_port() -> int:
    """A loopback port nothing listens on, for a service this run is about to start.

    Binding port 0 would pick from the kernel's ephemeral range, which every outgoing
    connection (to Redis, PostgreSQL, clamd) also draws from: between the probe and the
    service's own bind, a client socket can take the port ("Address already in use").
    Ports below that range are never given to clients, so only listeners can collide,
    and the probe and `_handed_out` rule those out.
    """
    low, _ = _ephemeral_range()
    candidates = list(range(max(1024, low - 12000), low))
    random.shuffle(candidates)
    for port in candidates:
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free loopback port below the ephemeral range")


@dataclass
class ManagedProcess:
    """A child process in its own process group, with its output kept in a log file."""

    argv: list[str]
    env: Mapping[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> ManagedProcess:
        with open(self.log_path, "ab") as log:
            # The child keeps its own copy of the descriptor.
            self.proc = subprocess.Popen(
                self.argv,
                cwd=REPO_ROOT,
                env=dict(self.env),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill_hard(self) -> None:
        """SIGKILL the whole group: what an OOM kill or a pulled plug looks like."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
            assert self.proc is not None
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        if not self.alive():
            return
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT_S)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def worker_argv(
    queues: Sequence[str],
    *,
    processes: int = 1,
    threads: int = 2,
    setup: str = "actors.broker:setup",
) -> list[str]:
    """The dramatiq command line of a worker pool (supervisord.conf runs the same)."""
    return [
        str(VENV_BIN / "dramatiq"),
        setup,
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--queues",
        *queues,
        "--worker-shutdown-timeout",
        "5000",
    ]


def wait_for(predicate: object, timeout_s: float, what: str, interval_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def child_pids(pid: int) -> list[int]:
    """The direct children of pid (a gunicorn master's workers, say)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]
