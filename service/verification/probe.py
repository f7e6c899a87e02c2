"""A reachability probe for URL proof that cannot be aimed inward.

The probe resolves a host once, refuses every address that is not plainly public, connects
to the address it checked (never re-resolving, so DNS rebinding cannot swap it), sends the
original name as Host header and TLS SNI, follows redirects by hand re-checking each hop,
and caps total time and bytes read. The time cap holds for every read, the TLS handshake
and the response headers included: a watchdog shuts the socket at the deadline, so a
server that trickles one byte at a time cannot stretch it.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from urllib.parse import urljoin

from service.verification.addresses import (
    AddressPolicy,
    IPAddress,
    Target,
    UnsupportedScheme,
    parse_target,
)
from service.verification.thresholds import VerificationThresholds

Resolver = Callable[[str, int], Sequence[IPAddress]]
Connector = Callable[[IPAddress, int, float], socket.socket]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
READ_CHUNK_BYTES = 8192
USER_AGENT = "rift-proof-verifier/1"


def system_resolver(host: str, port: int) -> list[IPAddress]:
    """Resolve a host name through the operating system, once."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for info in infos:
        # Scoped IPv6 literals ("fe80::1%eth0") carry a zone the address parser rejects.
        address = ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def tcp_connector(address: IPAddress, port: int, timeout_s: float) -> socket.socket:
    """Open a TCP connection to an already-checked address."""
    return socket.create_connection((str(address), port), timeout=timeout_s)


@dataclass(frozen=True)
class ProbeResult:
    """What the reachability probe found; `refusal` is set when policy stopped it."""

    reachable: bool
    final_url: str
    status: int | None = None
    hops: int = 0
    bytes_read: int = 0
    refusal: str | None = None
    error: str | None = None


class _Refused(Exception):
    """The probe will not connect; policy, not the network, said no."""


class _Watchdog:
    """Shut every socket of one probe when its deadline passes, wherever the probe waits."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._expire)
        self._timer.daemon = True

    def guard(self, sock: socket.socket) -> None:
        """Put a connection under the deadline (shut at once when it has already passed).

        The watchdog keeps a duplicate of the descriptor: TLS wrapping detaches the
        original socket object, and shutting any descriptor of a connection shuts it.
        """
        duplicate = sock.dup()
        with self._lock:
            self._sockets.append(duplicate)
            if self.expired:
                _shut(duplicate)

    def remaining(self) -> float:
        """Seconds left, or TimeoutError when none are."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0 or self.expired:
            raise TimeoutError("the reachability check ran out of time")
        return remaining

    def _expire(self) -> None:
        # Under the lock, so a descriptor is never shut after the probe closed it (and the
        # number went to some other connection).
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)

    @contextlib.contextmanager
    def running(self) -> Iterator[_Watchdog]:
        self._timer.start()
        try:
            yield self
        finally:
            self._timer.cancel()
            with self._lock:
                for sock in self._sockets:
                    sock.close()
                self._sockets.clear()


def _shut(sock: socket.socket) -> None:
    # shutdown() wakes a thread blocked in recv or in the TLS handshake on this socket;
    # close() alone would not.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


@dataclass(frozen=True)
class UrlProbe:
    """Check that a URL answers, without ever connecting to a non-public address."""

    timeout_s: float = 5.0
    max_bytes: int = 64 * 1024
    max_redirects: int = 5
    policy: AddressPolicy = field(default_factory=AddressPolicy)
    resolver: Resolver = system_resolver
    connector: Connector = tcp_connector
    ssl_context: ssl.SSLContext | None = None

    @classmethod
    def from_thresholds(cls, thresholds: VerificationThresholds) -> UrlProbe:
        """Build the production probe from the configured limits."""
        return cls(
            timeout_s=thresholds.url_timeout_s,
            max_bytes=thresholds.url_max_bytes,
            max_redirects=thresholds.url_max_redirects,
        )

    def __call__(self, url: str) -> ProbeResult:
        """Fetch `url` (bounded) following checked redirects; report what happened."""
        with _Watchdog(time.monotonic() + self.timeout_s).running() as watchdog:
            return self._follow(url, watchdog)

    def _follow(self, url: str, watchdog: _Watchdog) -> ProbeResult:
        current = url
        for hop in range(self.max_redirects + 1):
            try:
                target = parse_target(current)
                address = self._checked_address(target)
                status, location, read = self._fetch(target, address, watchdog)
            except (_Refused, UnsupportedScheme) as exc:
                return ProbeResult(False, current, hops=hop, refusal=str(exc))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                # Past the deadline the watchdog shut the socket; say so, not "reset by peer".
                error = "the reachability check ran out of time" if watchdog.expired else None
                return ProbeResult(False, current, hops=hop, error=error or _describe(exc))
            if status in REDIRECT_STATUSES and location:
                current = urljoin(current, location)
                continue
            return ProbeResult(200 <= status < 400, current, status, hop, read)
        return ProbeResult(False, current, hops=self.max_redirects, error="too many redirects")

    def _checked_address(self, target: Target) -> IPAddress:
        if target.literal is not None:
            addresses: Sequence[IPAddress] = [target.literal]
        else:
            addresses = self.resolver(target.host, target.port)
        if not addresses:
            raise OSError(f"{target.host} resolved to no address")
        # Every record must be public: a mixed answer is a rebinding trick, not bad luck.
        for address in addresses:
            reason = self.policy.refusal(address)
            if reason is not None:
                raise _Refused(f"{target.host} resolves to a {reason}")
        return addresses[0]

    def _fetch(
        self, target: Target, address: IPAddress, watchdog: _Watchdog
    ) -> tuple[int, str | None, int]:
        connection = self._connection(target, address, watchdog)
        try:
            connection.request(
                "GET",
                target.path,
                headers={
                    "User-Agent": USER_AGENT,
                    "Accept": "*/*",
                    "Accept-Encoding": "identity",
                    "Connection": "close",
                },
            )
            response = connection.getresponse()
            read = 0
            while read < self.max_bytes:
                if connection.sock is not None:
                    connection.sock.settimeout(watchdog.remaining())
                chunk = response.read(min(READ_CHUNK_BYTES, self.max_bytes - read))
                if not chunk:
                    break
                read += len(chunk)
            # A shut socket reads as a clean end of headers or body: only the watchdog
            # knows the answer was cut, not complete.
            watchdog.remaining()
            return response.status, response.getheader("Location"), read
        finally:
            connection.close()

    def _connection(
        self, target: Target, address: IPAddress, watchdog: _Watchdog
    ) -> http.client.HTTPConnection:
        if target.scheme == "https":
            context = self.ssl_context or ssl.create_default_context()
            return _PinnedHTTPSConnection(
                target.host, target.port, address, self.connector, watchdog, context
            )
        return _PinnedHTTPConnection(target.host, target.port, address, self.connector, watchdog)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a checked address that still speaks the original host name."""

    def __init__(
        self, host: str, port: int, address: IPAddress, connector: Connector, watchdog: _Watchdog
    ) -> None:
        super().__init__(host, port, timeout=watchdog.remaining())
        self._address = address
        self._connector = connector
        self._watchdog = watchdog

    def connect(self) -> None:
        """Connect to the pinned address instead of resolving the host again."""
        sock = self._connector(self._address, self.port, self._watchdog.remaining())
        self._watchdog.guard(sock)
        self.sock = sock


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """The TLS flavour: certificate and SNI checked against the original host name."""

    default_port = 443

    def __init__(
        self,
        host: str,
        port: int,
        address: IPAddress,
        connector: Connector,
        watchdog: _Watchdog,
        context: ssl.SSLContext,
    ) -> None:
        super().__init__(host, port, address, connector, watchdog)
        self._context = context

    def connect(self) -> None:
        """Connect to the pinned address, then start TLS for the original host name."""
        super().connect()
        self.sock.settimeout(self._watchdog.remaining())
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
