"""The inspection fork server: loads the rules once, forks one child per file to check.

Started by service/verification/budget.py with one end of a SOCK_SEQPACKET pair as file
descriptor CONTROL_FD. Each request is one message: the pickled keyword arguments of
check_file, with one descriptor attached, the socket the answer goes to. The child caps
its address space, sends its pid, checks the file and sends the pickled FileCheck (or the
name of what stopped it). The server exits when the control socket closes, that is, when
the worker that started it is gone. It is single-threaded, so forking it is safe.
"""

from __future__ import annotations

import contextlib
import math
import os
import pickle
import resource
import signal
import socket
import struct
import sys
from typing import Any

from service.verification.files import FileCheck, check_file

MAX_REQUEST_BYTES = 64 * 1024
LENGTH = struct.Struct(">I")


def serve(control: socket.socket) -> None:
    """Fork a child per request until the control socket closes."""
    # Children are reaped by the kernel; the client learns their fate from its socket.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
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
        if os.fork() == 0:
            control.close()
            _child(socket.socket(fileno=fds[0]), request)
        os.close(fds[0])


def _child(answer: socket.socket, request: bytes) -> None:
    status = 0
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        arguments: dict[str, Any] = pickle.loads(request)  # noqa: S301 - from our own parent
        _limit_address_space(arguments.pop("memory_bytes"))
        # The child ends itself at the budget (SIGALRM's default action terminates it), so
        # nobody has to kill it by a pid that may already name another process; RLIMIT_CPU
        # is the kernel's backstop for a child that blocks the alarm.
        budget_s = max(1, math.ceil(arguments.pop("wall_clock_s")))
        signal.alarm(budget_s)
        resource.setrlimit(resource.RLIMIT_CPU, (budget_s + 1, budget_s + 2))
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
