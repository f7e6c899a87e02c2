"""A TCP proxy in front of clamd that hangs up on as many connections as it is told to."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Self

FAIL_EVERY_CONNECTION = 1_000_000


class FlakyClamd:
    """Forward connections to clamd, except the next `failures`, which are closed unanswered.

    To the client a closed connection is clamd restarting: ScannerUnavailable, a retry.
    """

    def __init__(self, upstream_port: int, *, port: int = 0) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port: int = self.listener.getsockname()[1]
        self.hung_up = 0
        self._failures = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def fail_next(self, connections: int) -> None:
        with self._lock:
            self._failures = connections

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # the listener was closed
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with self._lock:
            fail = self._failures > 0
            if fail:
                self._failures -= 1
                self.hung_up += 1
        if fail:
            client.close()
            return
        self._forward(client)

    def _forward(self, client: socket.socket) -> None:
        with client, socket.create_connection(self.upstream, timeout=10) as upstream:
            sending = threading.Thread(target=_pump, args=(client, upstream), daemon=True)
            sending.start()
            _pump(upstream, client)
            sending.join(timeout=10)


def _pump(source: socket.socket, target: socket.socket) -> None:
    # Either side may hang up at any point: that ends the copy, nothing more.
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)
