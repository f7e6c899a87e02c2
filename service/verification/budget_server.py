"""The inspection fork server: loads the rules once, checks each file in a child of its own.

Started by service/verification/budget.py with one end of a SOCK_SEQPACKET pair as file
descriptor CONTROL_FD. Before its first fork it checks a sample of every accepted type
(service/verification/warm_up.py), so that the libraries' first-use imports and set-up
happen once here instead of in every child, and says READY on the control socket. Each
request is one message: the pickled keyword arguments of check_file, with one descriptor
attached, the socket the answer goes to. The server hands it to a child forked ahead of
time (Spares); the child sends STARTED, caps its address space, checks the file and sends
the pickled FileCheck (or the name of what stopped it). The server exits when the control
socket closes, that is, when the worker that started it is gone, and its spares follow
it. It is single-threaded, so forking it is safe.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import pickle
import resource
import select
import signal
import socket
import struct
import sys
from collections import deque
from typing import Any

from service.verification.files import FileCheck, check_file
from service.verification.warm_up import warm_up

MAX_REQUEST_BYTES = 64 * 1024
LENGTH = struct.Struct(">I")
READY = b"ready"
STARTED = b"s"
# A proof's files are checked at once (a small proof has two), each in its own child.
SPARE_CHILDREN = 2
ALARM_GRACE_S = 0.25


def serve(control: socket.socket) -> None:
    """Hand each request to a spare child until the control socket closes."""
    # Children are reaped by the kernel; the client learns their fate from its socket.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    prepare()
    spares = Spares(control)
    spares.fill()
    control.send(READY)
    while True:
        try:
            request, fds, _, _ = socket.recv_fds(control, MAX_REQUEST_BYTES, 1)
        except InterruptedError:
            continue
        if not request:
            return
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            continue
        spares.hand_over(request, fds[0])
        os.close(fds[0])
        # The files of one proof arrive together: each takes a spare before any is replaced.
        if not select.select([control], [], [], 0)[0]:
            spares.fill()


class Spares:
    """Children forked ahead of their request, so that no request waits for a fork.

    A fork of the warmed-up server takes about 4 ms on a 2-core VM (copying its page
    tables), on the critical path of every file when done on request. A spare waits on its
    own socket for one request; it ends when that socket closes, so spares never outlive
    the server.
    """

    def __init__(self, control: socket.socket) -> None:
        self._control = control
        self._waiting: deque[socket.socket] = deque()

    def fill(self) -> None:
        """Fork spares until SPARE_CHILDREN wait."""
        while len(self._waiting) < SPARE_CHILDREN:
            self._waiting.append(self._fork())

    def hand_over(self, request: bytes, answer_fd: int) -> None:
        """Give the request and its answer socket to a waiting spare (a new one if none)."""
        for _ in range(SPARE_CHILDREN + 1):
            spare = self._waiting.popleft() if self._waiting else self._fork()
            with spare:
                try:
                    socket.send_fds(spare, [request], [answer_fd])
                    return
                # A spare that died meanwhile (killed, say) is passed over.
                except OSError:
                    continue
        # Unanswered, the request's socket closes: the client records a crashed check.

    def _fork(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if os.fork() == 0:
            # Only the server may hold the other spares' sockets, or they outlive it.
            for held in (ours, self._control, *self._waiting):
                held.close()
            _spare(theirs)
        theirs.close()
        return ours


def _spare(handover: socket.socket) -> None:
    try:
        request, fds, _, _ = socket.recv_fds(handover, MAX_REQUEST_BYTES, 1)
        handover.close()
    except BaseException:
        os._exit(1)
    if not request or len(fds) != 1:
        for fd in fds:
            os.close(fd)
        os._exit(0)
    _child(socket.socket(fileno=fds[0]), request)


def prepare() -> None:
    """Do once, before any fork, what each child would otherwise do on its first file."""
    warm_up()
    # What the server built, the children only read: frozen objects are left out of the
    # children's garbage collections, which would otherwise write to (and so copy) every
    # page holding one.
    gc.collect()
    gc.freeze()


def _child(answer: socket.socket, request: bytes) -> None:
    status = 0
    try:
        # Before the file is read: the client can tell a spare that died waiting from a
        # file that stopped its inspector.
        answer.sendall(STARTED)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        arguments: dict[str, Any] = pickle.loads(request)  # noqa: S301 - from our own parent
        _limit_address_space(arguments.pop("memory_bytes"))
        # The child ends itself just past the budget (SIGALRM's default action terminates
        # it), so nobody has to kill it by a pid that may already name another process;
        # RLIMIT_CPU is the kernel's backstop for a child that blocks the alarm. The grace
        # lets the client's own deadline, which started before this child had the request,
        # pass first; the client also counts an answer cut after its deadline as the budget.
        wall_clock_s: float = arguments.pop("wall_clock_s")
        signal.setitimer(signal.ITIMER_REAL, wall_clock_s + ALARM_GRACE_S)
        cpu_s = math.ceil(wall_clock_s) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
        try:
            result: FileCheck | str = check_file(**arguments)
        except MemoryError:
            result = "memory"
        # check_file fences every parser; anything else is the inspector's own failure.
        except Exception:
            result = "crashed"
        payload = pickle.dumps(result)
        answer.sendall(LENGTH.pack(len(payload)) + payload)
    except BaseException:
        status = 1
    finally:
        with contextlib.suppress(OSError):
            answer.close()
        os._exit(status)


def _limit_address_space(memory_bytes: int) -> None:
    """Allow what the child maps already (the rules' libraries) plus the budget."""
    with open("/proc/self/statm") as statm:
        mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mapped + memory_bytes
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


if __name__ == "__main__":
    serve(socket.socket(fileno=int(sys.argv[1])))
