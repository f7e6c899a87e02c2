"""A verification worker warms its file inspection up at boot, before its first proof.

The warm-up (a sample of every accepted type checked before the fork server's first fork)
takes about half a second idle and seconds under load; lazily, the first proof of every
worker process paid it. Scan and cleanup workers never inspect files and start nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.processes import proc_stat_fields, wait_for

SERVER_MODULE = "service.verification.budget_server"
WARM_UP_TIMEOUT_S = 30.0
SCAN_WORKER_GRACE_S = 3.0


def descendants(pid: int) -> list[int]:
    """Every process below pid, by parent pid (Linux /proc).

    Not tests.monitoring.stack.child_pids: that reads the main thread's children only, and
    the inspection server is started from the warm-up thread.
    """
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = proc_stat_fields(stat.parent.name)
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def inspection_servers(pid: int) -> list[int]:
    servers = []
    for child in descendants(pid):
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if SERVER_MODULE.encode() in argv:
            servers.append(child)
    return servers


def test_a_verification_worker_starts_its_inspection_server_before_any_proof(
    start_worker,  # type: ignore[no-untyped-def]
) -> None:
    # Given a verification worker with two processes, and no proof submitted
    worker = start_worker(["verification"], processes=2)

    # Then each of its processes has a warmed inspection server of its own
    wait_for(
        lambda: len(inspection_servers(worker.pid)) == 2,
        WARM_UP_TIMEOUT_S,
        "an inspection server per worker process",
    )


def test_scan_and_cleanup_workers_start_no_inspection_server(
    start_worker,  # type: ignore[no-untyped-def]
) -> None:
    worker = start_worker(["scan", "cleanup"])
    time.sleep(SCAN_WORKER_GRACE_S)
    assert inspection_servers(worker.pid) == []
