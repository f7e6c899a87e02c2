"""A clamd that is gone or silent is ScannerUnavailable (retry later), never a verdict."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from service.scanning import ClamdAddress, ClamdScanner, ScannerUnavailable
from tests.support.processes import free_port

from .clamd_process import RunningClamd, stop_process
from .samples import EICAR

SILENT_SERVER_TIMEOUT_S = 0.5
POLL_INTERVAL_S = 0.05


@contextmanager
def silent_server(*, drains_input: bool) -> Iterator[ClamdAddress]:
    """Accept connections and never answer; optionally read everything sent."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(POLL_INTERVAL_S)
    stopping = threading.Event()
    accepted: list[socket.socket] = []

    def serve() -> None:
        while not stopping.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(connection)
            connection.settimeout(POLL_INTERVAL_S)
            while drains_input and not stopping.is_set():
                try:
                    if not connection.recv(64 * 1024):
                        break
                except TimeoutError:
                    continue

    server = threading.Thread(target=serve, name="silent-clamd", daemon=True)
    server.start()
    try:
        yield ClamdAddress(host="127.0.0.1", port=listener.getsockname()[1])
    finally:
        stopping.set()
        server.join()
        for connection in accepted:
            connection.close()
        listener.close()


def test_nothing_listening_is_unavailable() -> None:
    scanner = ClamdScanner(ClamdAddress(host="127.0.0.1", port=free_port()), 2.0)

    assert scanner.ping() is False
    with pytest.raises(ScannerUnavailable, match="cannot connect"):
        scanner.version()
    with pytest.raises(ScannerUnavailable, match="cannot connect"):
        scanner.scan_stream([EICAR])


def test_stopped_clamd_is_unavailable_over_tcp_and_unix_socket(own_clamd: RunningClamd) -> None:
    scanners = [
        ClamdScanner(own_clamd.tcp_address, 2.0),
        ClamdScanner(own_clamd.unix_address, 2.0),
    ]
    assert all(scanner.ping() for scanner in scanners)

    stop_process(own_clamd.pid)

    for scanner in scanners:
        assert scanner.ping() is False
        with pytest.raises(ScannerUnavailable):
            scanner.scan_stream(io.BytesIO(EICAR))


def test_clamd_that_reads_but_never_answers_times_out_as_unavailable() -> None:
    with silent_server(drains_input=True) as address:
        scanner = ClamdScanner(address, SILENT_SERVER_TIMEOUT_S)
        started = time.monotonic()

        with pytest.raises(ScannerUnavailable, match="did not answer within"):
            scanner.scan_stream(io.BytesIO(EICAR))

        assert SILENT_SERVER_TIMEOUT_S <= time.monotonic() - started < 5.0
        assert scanner.ping() is False


def test_clamd_that_stops_reading_times_out_as_unavailable() -> None:
    # More than the loopback socket buffers hold, so a send eventually blocks.
    upload = io.BytesIO(bytes(64 * 1024 * 1024))
    with silent_server(drains_input=False) as address:
        scanner = ClamdScanner(address, SILENT_SERVER_TIMEOUT_S)

        with pytest.raises(ScannerUnavailable, match="timed out"):
            scanner.scan_stream(upload)
