"""deploy/clamav/start-clamd.sh: idempotent, fails loudly, and runs under supervisord."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from service.models import ScanStatus
from service.scanning import ClamdAddress, ClamdScanner
from tests.support.processes import free_port

from .clamd_process import (
    START_SCRIPT,
    RunningClamd,
    run_start_script,
    start_clamd,
    stop_process,
)

WAIT_S = 30.0
POLL_INTERVAL_S = 0.1


def wait_until(condition_met: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition_met():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(POLL_INTERVAL_S)


def test_second_start_leaves_the_answering_clamd_alone(clamd: RunningClamd) -> None:
    rerun = run_start_script(clamd.runtime_dir, str(clamd.port))

    assert rerun.returncode == 0, rerun.stderr
    assert "already answers" in rerun.stderr
    assert int((clamd.runtime_dir / "clamd.pid").read_text()) == clamd.pid


def test_port_held_by_something_else_fails_before_starting_clamd(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as squatter:
        port = squatter.getsockname()[1]

        started = run_start_script(tmp_path / "clamd", str(port))

    assert started.returncode != 0
    assert "is not clamd" in started.stderr
    assert not (tmp_path / "clamd" / "clamd.pid").exists()


def test_clamd_that_cannot_start_fails_the_script_with_its_output(tmp_path: Path) -> None:
    # An empty database directory: clamd refuses to run without signatures.
    empty_database = tmp_path / "no-signatures"
    empty_database.mkdir()

    started = run_start_script(
        "--database-dir", empty_database, tmp_path / "clamd", str(free_port())
    )

    assert started.returncode != 0
    assert "before answering" in started.stderr
    assert "clamd.log" in started.stderr


def test_bad_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    started = run_start_script(tmp_path / "clamd", "70000")

    assert started.returncode != 0
    assert "PORT must be 1-65535" in started.stderr
    assert not (tmp_path / "clamd" / "clamd.conf").exists()


def test_foreground_mode_execs_clamd_for_supervisord(tmp_path: Path) -> None:
    runtime_dir = tmp_path / "clamd"
    port = free_port()
    scanner = ClamdScanner(ClamdAddress(host="127.0.0.1", port=port), 2.0)

    with subprocess.Popen(
        [str(START_SCRIPT), "--foreground", str(runtime_dir), str(port)],
        stderr=subprocess.DEVNULL,
    ) as supervised:
        try:
            wait_until(scanner.ping, "clamd to answer")
            # exec, not a child: supervisord's signals reach clamd itself.
            assert int((runtime_dir / "clamd.pid").read_text()) == supervised.pid
        finally:
            supervised.terminate()
        assert supervised.wait(timeout=WAIT_S) is not None
    assert scanner.ping() is False


def test_foreground_mode_watches_a_running_clamd_and_exits_when_it_stops(
    own_clamd: RunningClamd, tmp_path: Path
) -> None:
    watcher_dir = tmp_path / "watcher"
    stderr_path = tmp_path / "watcher.stderr"
    with (
        stderr_path.open("w") as stderr,
        subprocess.Popen(
            [str(START_SCRIPT), "--foreground", str(watcher_dir), str(own_clamd.port)],
            stderr=stderr,
            env={**os.environ, "CLAMD_WATCH_INTERVAL_S": "0.2"},
        ) as watcher,
    ):
        try:
            time.sleep(1.0)
            assert watcher.poll() is None, "the watcher should keep running"
            assert not (watcher_dir / "clamd.pid").exists(), "no second clamd"

            stop_process(own_clamd.pid)

            # Non-zero, so supervisord restarts it and it then starts its own clamd.
            assert watcher.wait(timeout=WAIT_S) == 1
        finally:
            if watcher.poll() is None:
                watcher.terminate()
                watcher.wait(timeout=WAIT_S)
    assert "stopped answering" in stderr_path.read_text()


def test_clamd_caches_clean_files_unless_the_benchmark_turns_it_off(
    clamd: RunningClamd, tmp_path: Path
) -> None:
    # The cache answers a second scan of the same bytes for a fraction of a scan's CPU:
    # what a deployment wants, and what a benchmark that scans the same files twice must not
    # get (bench/README.md, measurement 8).
    assert "\nDisableCache no\n" in (clamd.runtime_dir / "clamd.conf").read_text()
    uncached = start_clamd(tmp_path / "uncached", "--no-cache")
    try:
        assert "\nDisableCache yes\n" in (uncached.runtime_dir / "clamd.conf").read_text()
        scanner = ClamdScanner(uncached.tcp_address, 10.0)
        for _ in range(2):
            assert scanner.scan_stream(io.BytesIO(b"a delivery note")).status is ScanStatus.CLEAN
    finally:
        stop_process(uncached.pid)
