"""strace attached to a running process: the system calls it made, in order, with paths.

Durability is an order of system calls (data synced, then the rename, then the directory
synced, then the answer): a crash test would need a power cut, so the tests read the order.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import wait_for

ATTACH_TIMEOUT_S = 10.0
DETACH_TIMEOUT_S = 10.0
# What a durable write and its answer are made of; -y prints each descriptor's path.
TRACED = "fsync,fdatasync,rename,renameat,renameat2,sendto"
# Follow threads, print descriptors' paths, and keep whole messages (a COMMIT, a 202).
STRACE_OPTIONS = ("-f", "-y", "-s", "65536")
_CALL = re.compile(r"^\d+\s+(?P<name>\w+)\((?P<args>.*)\)\s+=\s+(?P<result>-?\d+)")
_FD_PATH = re.compile(r"^\d+<(?P<path>[^>]*)>")


@dataclass(frozen=True)
class Call:
    name: str
    args: str
    result: int

    @property
    def fd_path(self) -> str | None:
        """The path of the call's first argument when it is a descriptor (-y)."""
        found = _FD_PATH.match(self.args)
        return found["path"] if found else None

    @property
    def paths(self) -> list[str]:
        """The quoted paths among the arguments (rename's source and target)."""
        return re.findall(r'"([^"]*)"', self.args)


@dataclass
class Trace:
    log: Path
    calls: list[Call] = field(default_factory=list)

    def read(self) -> list[Call]:
        self.calls = []
        for line in self.log.read_text(errors="replace").splitlines():
            found = _CALL.match(line)
            if found:
                self.calls.append(Call(found["name"], found["args"], int(found["result"])))
        return self.calls

    def index(self, predicate: Callable[[Call], bool], what: str, *, after: int = -1) -> int:
        """The position of the first call after `after` that predicate accepts; failing
        names what is missing."""
        for position, call in enumerate(self.calls):
            if position > after and predicate(call):
                return position
        raise AssertionError(f"no system call {what} in the trace:\n" + self.summary())

    def summary(self) -> str:
        return "\n".join(f"{c.name}({c.args[:160]}) = {c.result}" for c in self.calls[:200])


def strace_binary() -> str:
    path = shutil.which("strace")
    assert path, "strace is required for the durability tests (make setup installs it)"
    return path


def strace_argv(log: Path, *arguments: str, failing: str | None = None) -> list[str]:
    """strace's command line: the calls in TRACED, written to log, then its arguments.

    failing names a system call the kernel is made to refuse with EIO meanwhile (strace's
    fault injection): what a failing disk answers.
    """
    injected = ["-e", f"inject={failing}:error=EIO"] if failing else []
    return [
        strace_binary(),
        *STRACE_OPTIONS,
        "-e",
        f"trace={TRACED}",
        *injected,
        "-o",
        str(log),
        *arguments,
    ]


@contextmanager
def traced(pid: int, log: Path, *, failing: str | None = None) -> Iterator[Trace]:
    """Trace pid and all its threads while the block runs; read the calls afterwards."""
    errors = log.with_suffix(".stderr")
    with open(errors, "wb") as stderr:
        tracer = subprocess.Popen(strace_argv(log, "-p", str(pid), failing=failing), stderr=stderr)
    try:
        wait_for(
            lambda: tracer.poll() is not None or b"attached" in errors.read_bytes(),
            ATTACH_TIMEOUT_S,
            "strace to attach",
        )
        assert tracer.poll() is None, errors.read_text()
        trace = Trace(log)
        yield trace
    finally:
        tracer.send_signal(signal.SIGINT)  # detaches; the traced process runs on
        tracer.wait(timeout=DETACH_TIMEOUT_S)
    trace.read()
