"""A TCP proxy in front of the real clamd that can be taken down or slowed down."""

from __future__ import annotations

import socket
import time

from tests.monitoring.flaky_clamd import FlakyClamd
from tests.support.processes import free_port


class ClamdProxy(FlakyClamd):
    """Forward to clamd; while `down`, hang up on every connection (clamd restarting), and
    hold each scan `delay_s` before forwarding it (a slow scanner keeps jobs RUNNING)."""

    def __init__(self, upstream_port: int) -> None:
        super().__init__(upstream_port, port=free_port())
        self.down = False
        self.delay_s = 0.0
        self.forwarded = 0

    def _serve(self, client: socket.socket) -> None:
        if self.down:
            client.close()
            return
        if self.delay_s:
            time.sleep(self.delay_s)
        self.forwarded += 1
        self._forward(client)
