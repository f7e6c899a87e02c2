"""One file's inspection runs in a child process a hostile file cannot outgrow."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image
from proof_fixtures import UPLOADED_AT, build_pdf, codes, prose

from service.verification import budget
from service.verification.budget import BudgetedInspector
from service.verification.budget_server import SPARE_CHILDREN, STARTED
from service.verification.files import FileCheck, check_file
from service.verification.thresholds import VerificationThresholds
from tests.support.processes import proc_stat_fields

DEFAULTS = VerificationThresholds()
INSPECTOR = BudgetedInspector()


def inspect(
    path: Path,
    thresholds: VerificationThresholds = DEFAULTS,
    inspector: BudgetedInspector = INSPECTOR,
) -> FileCheck:
    return inspector.check_file(
        path,
        declared_mime=None,
        size_bytes=path.stat().st_size,
        uploaded_at=UPLOADED_AT,
        thresholds=thresholds,
    )


def server_children(inspector: BudgetedInspector = INSPECTOR) -> set[int]:
    assert inspector.server_pid is not None
    pid = inspector.server_pid
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


def waiting_spares(inspector: BudgetedInspector) -> set[int]:
    """The server's children once the last file's child has ended and its replacement is
    forked: the same SPARE_CHILDREN processes for a while."""
    deadline = time.monotonic() + 5
    seen: set[int] = set()
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        children = server_children(inspector)
        if children != seen:
            seen, stable_since = children, time.monotonic()
        elif len(seen) == SPARE_CHILDREN and time.monotonic() - stable_since > 0.2:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"the server's children never settled: {seen}")


def signal_all(pids: set[int], signal_number: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal_number)


def test_within_budget_the_child_finds_what_the_rules_find_in_process(tmp_path: Path) -> None:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(build_pdf([prose(1500)], open_action_js="x()"))
    in_process = check_file(
        path,
        declared_mime=None,
        size_bytes=path.stat().st_size,
        uploaded_at=UPLOADED_AT,
        thresholds=DEFAULTS,
    )
    assert inspect(path) == in_process
    assert codes(in_process.check) == {"pdf.javascript", "pdf.open_action"}


def test_an_inspection_past_the_wall_clock_budget_is_an_issue_not_a_hang(tmp_path: Path) -> None:
    path = slow_pdf(tmp_path)
    hurried = replace(DEFAULTS, file_inspection_wall_clock_s=1.0)
    started = time.monotonic()
    result = inspect(path, hurried)
    assert time.monotonic() - started < 2.0
    assert codes(result.check) == {"file.inspection_budget"}
    assert not result.check.passed
    # And the late child ends by itself (its alarm), well before it would have finished:
    # only the spares waiting for the next files are left.
    deadline = started + 2.5
    while len(server_children()) > SPARE_CHILDREN and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(server_children()) == SPARE_CHILDREN


def slow_pdf(directory: Path) -> Path:
    """A PDF whose /Next array takes pypdf seconds to parse (4 s on an idle 2-core machine)."""
    harmless = b"<< /S /URI /URI (https://example.com) >> " * 300_000
    action = b"<< /S /URI /URI (x) /Next [" + harmless + b"] >>"
    path = directory / "invoice.pdf"
    path.write_bytes(build_pdf([prose(1500)], annotation_entries=b"/A " + action))
    return path


def test_an_inspector_killed_within_the_budget_is_a_crash_not_the_budget(
    tmp_path: Path,
) -> None:
    path = slow_pdf(tmp_path)
    inspector = BudgetedInspector()
    try:
        inspector.prepare()
        spares = waiting_spares(inspector)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(
                inspector.check_file,
                path,
                declared_mime=None,
                size_bytes=path.stat().st_size,
                uploaded_at=UPLOADED_AT,
                thresholds=DEFAULTS,
            )
            # When the spare checking the file (the one spending CPU) is killed, by an
            # operator or the kernel, 9 s before its 10 s budget ends
            time.sleep(0.5)
            busy = max(spares & server_children(inspector), key=_cpu_ticks)
            os.kill(busy, signal.SIGKILL)
            started = time.monotonic()
            result = pending.result(timeout=10)
        # Then the file is reported at once as having stopped its inspector
        assert time.monotonic() - started < 1.0
        assert codes(result.check) == {"file.inspection_crashed"}
        assert not result.check.passed
    finally:
        inspector.close()


@pytest.mark.parametrize(("seen_at_s", "outcome"), [(0.9, "crashed"), (1.2, "timeout")])
def test_an_answer_cut_after_the_deadline_is_the_budget_whatever_woke_the_client_first(
    monkeypatch: pytest.MonkeyPatch, seen_at_s: float, outcome: str
) -> None:
    # The child's alarm ends it just after the client's deadline; a client thread woken
    # late sees the closed socket before its own timeout. The clock is the only thing
    # faked: the socket, its STARTED byte and its close are real.
    ours, theirs = socket.socketpair()
    theirs.sendall(STARTED)
    theirs.close()
    readings = iter([0.0, 0.5, seen_at_s])
    monkeypatch.setattr(budget, "time", SimpleNamespace(monotonic=lambda: next(readings)))
    with ours:
        assert budget._await_answer(ours, deadline=1.0) == outcome


def test_an_inspection_past_the_memory_budget_is_an_issue_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    # 3000x3000 RGB decodes to 36 MB in Pillow (4 bytes a pixel); the budget is 24 MiB.
    Image.new("RGB", (3000, 3000), (200, 120, 40)).save(path, "PNG")
    starved = replace(DEFAULTS, file_inspection_memory_bytes=24 * 1024 * 1024)
    result = inspect(path, starved)
    assert not result.check.passed
    assert codes(result.check) <= {"file.inspection_budget", "image.unreadable"}
    assert any(
        "MemoryError" in issue.message or "MiB" in issue.message for issue in result.check.issues
    )


def test_a_file_inspected_in_a_child_costs_milliseconds_of_overhead(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(prose(800).encode())
    inspect(path)  # the forkserver starts once per process
    started = time.monotonic()
    for _ in range(20):
        assert inspect(path).check.passed
    per_file_s = (time.monotonic() - started) / 20
    print(f"inspection in a child: {per_file_s * 1000:.1f} ms per small file")
    assert per_file_s < 0.5


def test_a_spare_child_that_dies_before_its_file_is_passed_over(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(prose(800).encode())
    inspector = BudgetedInspector()

    def check() -> FileCheck:
        return inspector.check_file(
            path, declared_mime=None, size_bytes=800, uploaded_at=UPLOADED_AT, thresholds=DEFAULTS
        )

    spares: set[int] = set()
    try:
        assert check().check.passed
        # Given the spares waiting for the next file are frozen, one is handed the next
        # file, and then all are killed (by an operator, or the kernel out of memory)
        spares = waiting_spares(inspector)
        signal_all(spares, signal.SIGSTOP)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(check)
            time.sleep(0.3)
            signal_all(spares, signal.SIGKILL)
            result = pending.result(timeout=10)
        # Then the file was checked by another child, not reported as crashing one
        assert result.check.passed, result.check.issues
        # And so are the next ones
        for _ in range(SPARE_CHILDREN + 1):
            assert check().check.passed
        assert not server_children(inspector) & spares
    finally:
        signal_all(spares, signal.SIGKILL)  # never leave a stopped process behind
        inspector.close()


def test_files_arriving_together_past_the_spares_are_each_checked(tmp_path: Path) -> None:
    # More files at once than there are spares (a burst of proofs): the server replaces
    # spares only when no request is pending, so the ones past them need another child.
    # Each is checked; none is reported as having crashed its inspector.
    paths = []
    for i in range(SPARE_CHILDREN * 2 + 1):
        paths.append(tmp_path / f"notes-{i}.txt")
        paths[-1].write_bytes(prose(800 + i).encode())
    inspector = BudgetedInspector()
    try:

        def check(path: Path) -> FileCheck:
            return inspect(path, inspector=inspector)

        assert check(paths[0]).check.passed
        waiting_spares(inspector)
        server = inspector.server_pid
        assert server is not None
        # Given the server is held while the files queue up on its socket, so that every
        # request is pending when it takes the first
        os.kill(server, signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(len(paths)) as pool:
                pending = [pool.submit(check, path) for path in paths]
                time.sleep(0.3)
                os.kill(server, signal.SIGCONT)
                results = [p.result(timeout=10) for p in pending]
        finally:
            os.kill(server, signal.SIGCONT)
        assert all(r.check.passed for r in results), [r.check.issues for r in results]
        # And the server settles back to its spares afterwards
        assert len(waiting_spares(inspector)) == SPARE_CHILDREN
    finally:
        inspector.close()


def test_no_inspection_process_outlives_its_worker(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(prose(800).encode())
    inspector = BudgetedInspector()
    inspector.check_file(
        path, declared_mime=None, size_bytes=800, uploaded_at=UPLOADED_AT, thresholds=DEFAULTS
    )
    server = inspector.server_pid
    spares = waiting_spares(inspector)
    assert server is not None
    # When the worker's inspector closes (as at the worker's exit)
    inspector.close()
    # Then the server and its spares are gone
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in {server, *spares}):
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in {server, *spares})


def _alive(pid: int) -> bool:
    # A zombie has exited; the kernel reaps the server's children, this test reaps nobody.
    try:
        state = proc_stat_fields(pid)[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _cpu_ticks(pid: int) -> int:
    fields = proc_stat_fields(pid)
    return int(fields[11]) + int(fields[12])  # utime + stime
