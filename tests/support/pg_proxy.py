"""A TCP proxy in front of PostgreSQL that can break a connection at its COMMIT, or all.

What a server stopping, a failover or a broken network does to a client mid-COMMIT, on
purpose and at the one moment that matters: `arm(...)` makes the next COMMIT the proxy
sees either reach the server with its answer never coming back (`LOSE_ANSWER`: the
server commits, the client cannot know) or not reach it at all (`DROP_COMMIT`: the
server rolls back). Either way the client's connection is cut, and for `refuse_s` after
that every new connection is refused (the server seems down). `go_down(...)` breaks
every connection at once, wherever it is, and refuses new ones for a while.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import suppress
from enum import Enum

from tests.support.processes import free_port

# How a COMMIT looks on the wire, in a simple Query or an extended-protocol Parse: the
# statement text ends with a NUL. A bound value is length-prefixed, without one.
COMMIT_ON_THE_WIRE = b"COMMIT\x00"
CHUNK_BYTES = 65_536


class Cut(Enum):
    LOSE_ANSWER = "the COMMIT reaches the server; its answer is lost"
    DROP_COMMIT = "the COMMIT never reaches the server"
    LOSE_READY = "the COMMIT is answered; the connection breaks before the server is ready"


# The server's CommandComplete for a COMMIT: 'C', its length (4 + 7), the tag.
COMMIT_ANSWER = b"C\x00\x00\x00\x0bCOMMIT\x00"


class _Link:
    """One client connection and its server connection."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client, self.server = client, server
        self.cut_after_commit_answer = False


class PostgresProxy:
    def __init__(self, upstream_port: int = 5432) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._armed: Cut | None = None
        self._refuse_s = 0.0
        self._refuse_until = 0.0
        self.cuts = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._open: list[socket.socket] = []
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, cut: Cut, *, refuse_s: float = 0.0) -> None:
        with self._lock:
            self._armed, self._refuse_s = cut, refuse_s

    def go_down(self, refuse_s: float) -> None:
        """As if the server stopped: every open connection breaks, new ones are refused."""
        with self._lock:
            self._refuse_until = time.monotonic() + refuse_s
            links, self._open = self._open, []
        _close(*links)

    def url(self, database_url: str) -> str:
        """database_url (on the upstream port) with this proxy's port instead."""
        return database_url.replace(f":{self.upstream_port}/", f":{self.port}/", 1)

    def close(self) -> None:
        self._closing = True
        self._listener.close()
        for sock in list(self._open):
            with suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if time.monotonic() < self._refuse_until:
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._open += [client, server]
            link = _Link(client, server)
            threading.Thread(target=self._upstream, args=(link,), daemon=True).start()
            threading.Thread(target=self._downstream, args=(link,), daemon=True).start()

    def _upstream(self, link: _Link) -> None:
        """Client to server, watching for the COMMIT to break."""
        client, server = link.client, link.server
        while data := _recv(client):
            cut = self._take(data)
            if cut is Cut.LOSE_ANSWER:
                # The server gets all of it, then end-of-file; its answer is drained
                # unread by the other direction's thread (an early close could reset
                # the connection before the server has read what it was sent).
                with suppress(OSError):
                    server.sendall(data)
                    server.shutdown(socket.SHUT_WR)
                _close(client)
                return
            if cut is Cut.DROP_COMMIT:
                _close(client, server)
                return
            link.cut_after_commit_answer = cut is Cut.LOSE_READY
            try:
                server.sendall(data)
            except OSError:
                break  # the server went away first
        _close(client, server)

    def _take(self, data: bytes) -> Cut | None:
        with self._lock:
            cut = self._armed
            if cut is None or COMMIT_ON_THE_WIRE not in data:
                return None
            self._armed = None
            self.cuts += 1
            self._refuse_until = time.monotonic() + self._refuse_s
            return cut

    def _downstream(self, link: _Link) -> None:
        """Server to client; after a LOSE_READY cut, only up to the COMMIT's answer."""
        delivering = True
        while data := _recv(link.server):
            end = data.find(COMMIT_ANSWER) if link.cut_after_commit_answer else -1
            if end >= 0:
                with suppress(OSError):
                    link.client.sendall(data[: end + len(COMMIT_ANSWER)])
                break
            if delivering:
                try:
                    link.client.sendall(data)
                except OSError:
                    delivering = False  # the client is gone: read the rest, unsent
        _close(link.server, link.client)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(CHUNK_BYTES)
    except OSError:
        return b""


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with suppress(OSError):
            sock.close()
