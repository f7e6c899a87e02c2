"""Check one file in a child process that a hostile file cannot outgrow.

The parsers carry their own caps, but no cap inside a parser bounds everything it can be
made to do (a decoder's C loop, an allocation pypdf asks for). So each file is checked in a
child forked from a small fork server (service/verification/budget_server.py, started once
per worker process; the threaded worker itself is never forked), with RLIMIT_AS set to
what the child maps plus the memory budget, and given up on at the wall-clock budget. An
overrun, or a child that dies, is an issue on the file, never a failed job. The child
arms its own alarm just past the budget, so a late child ends itself and is never killed by pid.

Chosen over cooperative budgets checked in loops because those cannot interrupt C code
(zlib, libmagic, Pillow's decoders) and cannot bound memory at all. Chosen over
multiprocessing's forkserver because that re-imports the worker's main module in every
child. The price is a child per file. The server warms up before its first fork
(service/verification/warm_up.py), so no child repeats a library's first-use imports (a
PNG cost 190 ms more than in a warm process before that), and forks its children ahead of
their requests; what is left is the child's copy-on-write faults and the hand-over, about
5 ms a file on a 2-core VM, against 2-3 ms for the rules themselves on a small file (the
test that measures it prints the figure).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from service.verification.budget_server import READY, SPARE_CHILDREN, STARTED
from service.verification.files import FileCheck
from service.verification.issues import ScoreCard
from service.verification.sniffing import OCTET_STREAM
from service.verification.thresholds import VerificationThresholds

LENGTH_BYTES = 4
MAX_ANSWER_BYTES = 16 * 1024 * 1024
SERVER_MODULE = "service.verification.budget_server"
NOT_STARTED = "not started"
# A file whose child ended before it started is handed over again: should every waiting
# spare have died at once, the last attempt goes to one forked after them.
HAND_OVER_ATTEMPTS = SPARE_CHILDREN + 1
# Imports and the warm-up take about half a second on an idle 2-core machine.
SERVER_START_TIMEOUT_S = 30.0


class InspectorUnavailable(RuntimeError):
    """The fork server cannot be started or reached: an infrastructure error, retried."""


class BudgetedInspector:
    """Check files in children of one fork server, each under the thresholds' budgets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._control: socket.socket | None = None
        self._server: subprocess.Popen[bytes] | None = None
        # The server would stop by itself on EOF; closing first keeps exit quiet and prompt.
        atexit.register(self.close)

    def check_file(
        self,
        path: Path,
        *,
        declared_mime: str | None,
        size_bytes: int,
        uploaded_at: datetime,
        thresholds: VerificationThresholds,
    ) -> FileCheck:
        """Apply the file rules to `path` in a child bounded in time and memory."""
        request = pickle.dumps(
            {
                "path": path,
                "declared_mime": declared_mime,
                "size_bytes": size_bytes,
                "uploaded_at": uploaded_at,
                "thresholds": thresholds,
                "memory_bytes": thresholds.file_inspection_memory_bytes,
                "wall_clock_s": thresholds.file_inspection_wall_clock_s,
            }
        )
        for _ in range(HAND_OVER_ATTEMPTS):
            ours, theirs = socket.socketpair()
            with ours:
                try:
                    self._send(request, theirs)
                finally:
                    theirs.close()
                # From the hand-over: a server still warming up does not eat the budget.
                deadline = time.monotonic() + thresholds.file_inspection_wall_clock_s
                outcome = _await_answer(ours, deadline)
            if outcome != NOT_STARTED:
                return _as_check(outcome, thresholds)
        raise InspectorUnavailable("no inspection child started to check the file")

    def prepare(self) -> None:
        """Start the fork server (and its warm-up) now, not at the first file."""
        with self._lock:
            self._running_control()

    @property
    def server_pid(self) -> int | None:
        """The fork server's process id, once started (for operators and tests)."""
        return self._server.pid if self._server is not None else None

    def close(self) -> None:
        """Stop the fork server (it also stops by itself when this process exits)."""
        with self._lock:
            self._stop_server()

    def _send(self, request: bytes, answer_socket: socket.socket) -> None:
        with self._lock:
            for attempt in range(2):
                control = self._running_control()
                try:
                    socket.send_fds(control, [request], [answer_socket.fileno()])
                    return
                except OSError as error:
                    # A server that died (killed, or out of memory) is started again once.
                    self._stop_server()
                    if attempt == 1:
                        raise InspectorUnavailable(
                            f"the inspection server failed: {error}"
                        ) from error

    def _running_control(self) -> socket.socket:
        if self._control is not None and self._server is not None and self._server.poll() is None:
            return self._control
        self._stop_server()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._server = subprocess.Popen(
                [sys.executable, "-m", SERVER_MODULE, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                close_fds=True,
                env={**os.environ, "PYTHONPATH": _python_path()},
            )
        except OSError as error:
            ours.close()
            raise InspectorUnavailable(f"cannot start the inspection server: {error}") from error
        finally:
            theirs.close()
        self._control = ours
        try:
            ours.settimeout(SERVER_START_TIMEOUT_S)
            ready = ours.recv(len(READY))
            ours.settimeout(None)
        except OSError as error:
            ready = f"{error}".encode()
        if ready != READY:
            self._stop_server()
            raise InspectorUnavailable(f"the inspection server did not start: {ready!r}")
        return ours

    def _stop_server(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._server is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._server.wait(timeout=5)
            if self._server.poll() is None:
                self._server.kill()
                self._server.wait()
            self._server = None


def _python_path() -> str:
    # The server imports this package however the worker found it (installed or not).
    root = str(Path(__file__).resolve().parents[2])
    inherited = os.environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{inherited}" if inherited else root


def _await_answer(answer: socket.socket, deadline: float) -> FileCheck | str:
    """Read the child's result; past the deadline, give up (the child ends itself)."""
    try:
        if _read_exactly(answer, len(STARTED), deadline) != STARTED:
            return "crashed"
    except (EOFError, OSError):
        # Gone before it saw the file (a spare killed while waiting, or the server): not
        # the file's doing, so the file is handed over again.
        return NOT_STARTED
    except TimeoutError:
        return "timeout"
    try:
        size = int.from_bytes(_read_exactly(answer, LENGTH_BYTES, deadline), "big")
        if size > MAX_ANSWER_BYTES:
            return "crashed"
        message: Any = pickle.loads(_read_exactly(answer, size, deadline))  # noqa: S301
    except TimeoutError:
        return "timeout"
    except (EOFError, OSError, pickle.UnpicklingError):
        # Past the deadline, a cut answer is the child's own alarm seen before this
        # thread's timeout (a loaded machine wakes it late): the file had its whole budget.
        return "timeout" if time.monotonic() >= deadline else "crashed"
    if isinstance(message, FileCheck) or message in ("memory", "crashed"):
        return message  # type: ignore[no-any-return]
    return "crashed"


def _read_exactly(answer: socket.socket, size: int, deadline: float) -> bytes:
    received = bytearray()
    while len(received) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        answer.settimeout(remaining)
        chunk = answer.recv(min(size - len(received), 1024 * 1024))
        if not chunk:
            raise EOFError("the inspector ended without an answer")
        received += chunk
    return bytes(received)


def _as_check(outcome: FileCheck | str, thresholds: VerificationThresholds) -> FileCheck:
    if isinstance(outcome, FileCheck):
        return outcome
    if outcome == "timeout":
        return _overrun(
            thresholds,
            "file.inspection_budget",
            "The file took longer than the "
            f"{thresholds.file_inspection_wall_clock_s:g} s inspection budget to check.",
        )
    if outcome == "memory":
        return _overrun(
            thresholds,
            "file.inspection_budget",
            "The file needed more than the "
            f"{thresholds.file_inspection_memory_bytes // (1024 * 1024)} MiB inspection "
            "budget to check.",
        )
    return _overrun(
        thresholds,
        "file.inspection_crashed",
        "Checking the file stopped the inspector before it answered.",
    )


def _overrun(thresholds: VerificationThresholds, code: str, message: str) -> FileCheck:
    card = ScoreCard(pass_score=thresholds.pass_score)
    card.fail_integrity(code, message)
    # The type is not trusted from a file whose check did not finish.
    return FileCheck(card.finish(), sniffed_mime=OCTET_STREAM)
