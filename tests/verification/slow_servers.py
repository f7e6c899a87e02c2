"""Real sockets that answer too slowly: one byte at a time, forever."""

from __future__ import annotations

import socket
import ssl
import threading


class TricklingServer:
    """Accept connections and send `preamble` one byte per `interval_s`, then more of the same.

    With `tls`, the TLS handshake completes first and the trickle follows inside it; with
    `stall_handshake`, the server instead sends nothing after the TCP accept (a TLS client
    waits for a ServerHello that never comes).
    """

    def __init__(
        self,
        preamble: bytes = b"HTTP/1.1 200 OK\r\n",
        *,
        interval_s: float = 0.05,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.preamble = preamble
        self.interval_s = interval_s
        self.tls = tls
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.bytes_sent = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> TricklingServer:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.sock.close()
        for thread in self._threads:
            thread.join(timeout=2)

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            thread = threading.Thread(target=self._trickle, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _trickle(self, conn: socket.socket) -> None:
        stream: socket.socket = conn
        try:
            if self.tls is not None:
                conn.settimeout(5)
                stream = self.tls.wrap_socket(conn, server_side=True)
            # A header line that never ends: each byte restarts a per-read timeout.
            body = self.preamble + b"X-Slow: " + b"a" * 10_000
            for byte in body:
                if self._stop.wait(self.interval_s):
                    return
                stream.sendall(bytes([byte]))
                self.bytes_sent += 1
        except OSError:
            return
        finally:
            stream.close()
            conn.close()
