"""CPU time of process groups over a stretch of time, read from /proc.

Long-lived processes (a gunicorn master and its workers, a Dramatiq pool, clamd, a
PostgreSQL backend) are read before and after. Short-lived ones (the inspection fork
server's one child per file) exit in milliseconds and are reaped by the kernel (the server
ignores SIGCHLD), so their time never reaches the server's cutime: they are sampled every
few milliseconds while the stretch runs, and each counts what it had used when last seen
(a lower bound: up to one interval of each child's last CPU is missed).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

TICK_S = 1 / os.sysconf("SC_CLK_TCK")
# (pid, start time in ticks): a pid the kernel hands out again is another process.
ProcessKey = tuple[int, int]


def _stat(pid: int) -> tuple[ProcessKey, float] | None:
    """(pid, start time) and CPU seconds (user + system) of pid; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (pid, int(fields[19])), (int(fields[11]) + int(fields[12])) * TICK_S


def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):  # the process may have ended meanwhile
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                found += [int(p) for p in (task / "children").read_text().split()]
    return found


def descendants(roots: Iterable[int], *, into: Callable[[int], bool] = lambda _: True) -> list[int]:
    """roots and every process below them (below those `into` says yes to)."""
    found: list[int] = []
    pending = list(roots)
    while pending:
        pid = pending.pop()
        found.append(pid)
        if into(pid):
            pending += children(pid)
    return found


def is_fork_server(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return b"service.verification.budget_server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return False


class Account:
    """The CPU one group of processes uses between start() and stop()."""

    def __init__(self, name: str, pids: Callable[[], Iterable[int]]) -> None:
        self.name = name
        self.pids = pids
        self._before: dict[ProcessKey, float] = {}
        self.cpu_s = 0.0

    def start(self) -> None:
        self._before = dict(filter(None, (_stat(pid) for pid in self.pids())))

    def stop(self) -> None:
        after = dict(filter(None, (_stat(pid) for pid in self.pids())))
        # A process that started meanwhile used all of its time in the stretch.
        self.cpu_s = sum(cpu - self._before.get(key, 0.0) for key, cpu in after.items())


class ShortLivedChildren:
    """Samples the children of some parents every `interval_s` in a thread of its own."""

    def __init__(
        self, name: str, parents: Callable[[], Iterable[int]], interval_s: float = 0.002
    ) -> None:
        self.name = name
        self.parents = parents
        self.interval_s = interval_s
        self._seen: dict[ProcessKey, list[float]] = {}  # key -> [first seen, last seen]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.cpu_s = 0.0
        self.processes = 0
        self.own_cpu_s = 0.0  # what the sampling thread itself used

    def _sample(self, parents: Iterable[int], *, first: bool) -> None:
        for parent in parents:
            for child in children(parent):
                found = _stat(child)
                if found is None:
                    continue
                key, cpu = found
                if key in self._seen:
                    self._seen[key][1] = cpu
                else:
                    # Alive when the stretch began: count only what it uses from then on.
                    self._seen[key] = [cpu if first else 0.0, cpu]

    def _run(self) -> None:
        began = time.thread_time()
        try:
            self._watch()
        finally:
            self.own_cpu_s = time.thread_time() - began

    def _watch(self) -> None:
        look_again_every = max(1, round(0.1 / self.interval_s))
        parents = list(self.parents())
        self._sample(parents, first=True)
        tick = 0
        while not self._stop.wait(self.interval_s):
            tick += 1
            if tick % look_again_every == 0:
                parents = list(self.parents())  # a server may have been started again
            self._sample(parents, first=False)

    def start(self) -> None:
        self._seen.clear()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True, name=self.name)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.cpu_s = sum(last - first for first, last in self._seen.values())
        self.processes = len(self._seen)


#: Either kind of reading, started and stopped around the same stretch.
Meter = Account | ShortLivedChildren
