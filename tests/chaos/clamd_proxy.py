"""A TCP proxy in front of the real clamd that can be taken down or slowed down."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from tests.support.processes import free_port


class ClamdProxy:
    """Forward to clamd; while `down`, hang up on every connection (clamd restarting), and
    hold each scan `delay_s` before forwarding it (a slow scanner keeps jobs RUNNING)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.down = False
        self.delay_s = 0.0
        self.forwarded = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> ClamdProxy:
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
        if self.down:
            client.close()
            return
        if self.delay_s:
            time.sleep(self.delay_s)
        self.forwarded += 1
        with client, socket.create_connection(self.upstream, timeout=10) as upstream:
            sending = threading.Thread(target=_pump, args=(client, upstream), daemon=True)
            sending.start()
            _pump(upstream, client)
            sending.join(timeout=10)


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)
