"""A small clamd client: PING, VERSION and INSTREAM over TCP or a unix socket.

Written by hand rather than taken from PyPI's ``clamd`` package, which is unmaintained (no
release since 2017) and untyped; the part of the protocol Rift needs is a few lines
(clamd(8), "INSTREAM"): ``zINSTREAM\\0``, then chunks each prefixed with their length as a
4-byte big-endian integer, then a zero length; clamd answers one NUL-terminated line.
"""

from __future__ import annotations

import select
import socket
import struct
from collections.abc import Iterator
from typing import cast

from service.scanning.address import ClamdAddress
from service.scanning.errors import ScannerUnavailable
from service.scanning.verdict import ChunkSource, ScanResult

# Large enough that a 50 MB upload is ~800 sends, small enough to keep memory flat.
INSTREAM_CHUNK_BYTES = 64 * 1024
# clamd replies with one short line; anything longer is not clamd talking.
MAX_REPLY_BYTES = 4096
# clamd names files it could not scan completely "Heuristics.Limits.Exceeded.<limit>"
# (AlertExceedsMax in deploy/clamav/clamd.conf.in) and encrypted ones
# "Heuristics.Encrypted.<kind>" (AlertEncrypted); both are "unscannable", not malware.
LIMITS_EXCEEDED_PREFIX = "Heuristics.Limits.Exceeded"
UNSCANNABLE_PREFIXES = (LIMITS_EXCEEDED_PREFIX, "Heuristics.Encrypted")

_CHUNK_LENGTH = struct.Struct(">I")
_END_OF_STREAM = _CHUNK_LENGTH.pack(0)
_STREAM_PREFIX = "stream: "
_FOUND_SUFFIX = " FOUND"
_ERROR_SUFFIX = " ERROR"


class ClamdScanner:
    """Scan byte streams with a clamd daemon.

    ``timeout_s`` bounds every socket operation (connect, each send, the wait for the
    verdict), so it must exceed clamd's MaxScanTime or a slow but healthy scan reads as
    "unavailable".
    """

    def __init__(
        self,
        address: ClamdAddress,
        timeout_s: float,
        *,
        chunk_bytes: int = INSTREAM_CHUNK_BYTES,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if chunk_bytes <= 0:
            raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
        self.address = address
        self.timeout_s = timeout_s
        self.chunk_bytes = chunk_bytes

    def ping(self) -> bool:
        """Return whether clamd answers PING; never raises for an unreachable clamd."""
        try:
            return self._command("zPING") == "PONG"
        except ScannerUnavailable:
            return False

    def version(self) -> str:
        """Return clamd's version line, e.g. ``ClamAV 1.4.6/27000/...``."""
        return self._command("zVERSION")

    def scan_stream(self, source: ChunkSource) -> ScanResult:
        """Stream ``source`` to clamd and return its verdict.

        Raises ScannerUnavailable when clamd cannot be reached, stops answering or says
        something that is not a verdict; errors reading ``source`` propagate unchanged.
        """
        with self._connect() as connection:
            self._send_stream(connection, _chunks_of(source, self.chunk_bytes))
            reply = self._read_reply(connection)
        return parse_instream_reply(reply)

    def _send_stream(self, connection: socket.socket, chunks: Iterator[bytes]) -> None:
        # clamd answers before the end of the stream when it gives up on it (the size
        # limit) and then closes; polling lets us stop sending and still read that answer.
        early_reply = select.poll()
        early_reply.register(connection, select.POLLIN)
        if not self._send(connection, b"zINSTREAM\0"):
            return
        for chunk in chunks:
            if early_reply.poll(0):
                return
            if not self._send(connection, _CHUNK_LENGTH.pack(len(chunk)) + chunk):
                return
        self._send(connection, _END_OF_STREAM)

    def _send(self, connection: socket.socket, data: bytes) -> bool:
        """Send ``data``; return False when clamd has closed its end (a reply may wait)."""
        try:
            connection.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        except OSError as error:
            raise ScannerUnavailable(
                f"sending to clamd at {self.address} failed: {error}"
            ) from error
        return True

    def _command(self, command: str) -> str:
        with self._connect() as connection:
            if not self._send(connection, command.encode("ascii") + b"\0"):
                raise ScannerUnavailable(f"clamd at {self.address} closed the connection")
            return self._read_reply(connection)

    def _connect(self) -> socket.socket:
        try:
            return self.address.connect(self.timeout_s)
        except OSError as error:
            raise ScannerUnavailable(
                f"cannot connect to clamd at {self.address}: {error}"
            ) from error

    def _read_reply(self, connection: socket.socket) -> str:
        received = bytearray()
        while b"\0" not in received:
            try:
                data = connection.recv(MAX_REPLY_BYTES)
            except TimeoutError as error:
                raise ScannerUnavailable(
                    f"clamd at {self.address} did not answer within {self.timeout_s}s"
                ) from error
            except OSError as error:
                raise ScannerUnavailable(
                    f"reading from clamd at {self.address} failed: {error}"
                ) from error
            if not data:
                break
            received += data
            if len(received) > MAX_REPLY_BYTES:
                raise ScannerUnavailable(f"clamd at {self.address} sent an oversized reply")
        reply = bytes(received).split(b"\0", 1)[0].decode("utf-8", "replace").strip()
        if not reply:
            raise ScannerUnavailable(f"clamd at {self.address} closed the connection unanswered")
        return reply


def parse_instream_reply(reply: str) -> ScanResult:
    """Turn clamd's answer to INSTREAM into a verdict, or raise ScannerUnavailable."""
    if reply == f"{_STREAM_PREFIX}OK":
        return ScanResult.clean()
    if reply.startswith(_STREAM_PREFIX) and reply.endswith(_FOUND_SUFFIX):
        signature = reply[len(_STREAM_PREFIX) : -len(_FOUND_SUFFIX)].strip()
        if signature.startswith(UNSCANNABLE_PREFIXES):
            return ScanResult.unscannable(f"clamd could not scan the whole file: {signature}")
        return ScanResult.infected(signature)
    # "INSTREAM size limit exceeded. ERROR" and errors about this stream are answers about
    # the file: scanning it again gives the same result, so they are verdicts, not retries.
    if reply.endswith(_ERROR_SUFFIX):
        return ScanResult.unscannable(reply)
    # Anything else ("COMMAND READ TIMED OUT", "UNKNOWN COMMAND", a non-clamd server) says
    # nothing about the file.
    raise ScannerUnavailable(f"unexpected reply from clamd: {reply[:200]!r}")


def _chunks_of(source: ChunkSource, chunk_bytes: int) -> Iterator[bytes]:
    # A file object is also an iterable, but of lines: a binary file without newlines
    # would arrive as one huge "line", so read it in fixed-size pieces instead.
    read = getattr(source, "read", None)
    if callable(read):
        while chunk := cast(bytes, read(chunk_bytes)):
            yield chunk
        return
    for chunk in source:
        # A zero-length chunk is INSTREAM's end-of-stream marker, so never send one early;
        # re-slice long chunks so one send never holds more than chunk_bytes.
        for start in range(0, len(chunk), chunk_bytes):
            yield chunk[start : start + chunk_bytes]
