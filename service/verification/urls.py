"""URL proof: scheme and shortener rules, and a reachability probe that cannot be aimed inward.

The probe resolves a host once, refuses every address that is not plainly public, connects
to the address it checked (never re-resolving, so DNS rebinding cannot swap it), sends the
original name as Host header and TLS SNI, follows redirects by hand re-checking each hop,
and caps total time and bytes read.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import urljoin, urlsplit

from service.verification.issues import AssetCheck, ScoreCard
from service.verification.thresholds import VerificationThresholds

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
Resolver = Callable[[str, int], Sequence[IPAddress]]
Connector = Callable[[IPAddress, int, float], socket.socket]

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
SHORTENER_HOSTS = frozenset(
    {
        "bit.ly", "bitly.com", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "buff.ly",
        "rebrand.ly", "cutt.ly", "shorturl.at", "tiny.cc", "v.gd", "rb.gy", "t.ly", "s.id",
        "bl.ink", "lnkd.in", "trib.al", "soo.gd", "qr.ae", "adf.ly", "shorte.st", "clck.ru",
        "tr.im", "x.co", "y2u.be", "db.tt", "amzn.to", "youtu.be",
    }
)  # fmt: skip
# Cloud instance-metadata endpoints (AWS, AWS ECS, AWS IPv6, Alibaba): refused even when a
# policy widens the allowed networks, because reaching them leaks credentials.
METADATA_ADDRESSES = frozenset(
    ip_address(text)
    for text in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
NAT64_PREFIX = ip_network("64:ff9b::/96")
READ_CHUNK_BYTES = 8192
USER_AGENT = "rift-proof-verifier/1"


@dataclass(frozen=True)
class AddressPolicy:
    """Decide which resolved addresses the probe may connect to: public ones only.

    `extra_allowed` widens the policy for named networks (tests use 127.0.0.1/32 for a
    local server); metadata addresses stay refused regardless.
    """

    extra_allowed: tuple[IPNetwork, ...] = ()

    def refusal(self, address: IPAddress) -> str | None:
        """Return why connecting to `address` is refused, or None when it is allowed."""
        address = embedded_ipv4(address)
        if address in METADATA_ADDRESSES:
            return "cloud metadata address"
        if any(address in network for network in self.extra_allowed):
            return None
        checks = (
            (address.is_unspecified, "unspecified address"),
            (address.is_loopback, "loopback address"),
            (address.is_link_local, "link-local address"),
            (address.is_multicast, "multicast address"),
            (address.is_private, "private address"),
            (address.is_reserved, "reserved address"),
            (not address.is_global, "non-public address"),
        )
        for refused, reason in checks:
            if refused:
                return f"{reason} {address}"
        return None


def embedded_ipv4(address: IPAddress) -> IPAddress:
    """Unwrap an IPv4 address carried inside an IPv6 one (mapped, 6to4, NAT64)."""
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in NAT64_PREFIX:
            return IPv4Address(int(address) & 0xFFFFFFFF)
    return address


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


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str


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
        deadline = time.monotonic() + self.timeout_s
        current = url
        for hop in range(self.max_redirects + 1):
            try:
                target = _parse_target(current)
                address = self._checked_address(target)
                status, location, read = self._fetch(target, address, deadline)
            except _Refused as exc:
                return ProbeResult(False, current, hops=hop, refusal=str(exc))
            except (OSError, http.client.HTTPException, ValueError) as exc:
                return ProbeResult(False, current, hops=hop, error=_describe(exc))
            if status in REDIRECT_STATUSES and location:
                current = urljoin(current, location)
                continue
            return ProbeResult(200 <= status < 400, current, status, hop, read)
        return ProbeResult(False, current, hops=self.max_redirects, error="too many redirects")

    def _checked_address(self, target: _Target) -> IPAddress:
        try:
            addresses: Sequence[IPAddress] = [ip_address(target.host)]
        except ValueError:
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
        self, target: _Target, address: IPAddress, deadline: float
    ) -> tuple[int, str | None, int]:
        connection = self._connection(target, address, _remaining(deadline))
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
                    connection.sock.settimeout(_remaining(deadline))
                chunk = response.read(min(READ_CHUNK_BYTES, self.max_bytes - read))
                if not chunk:
                    break
                read += len(chunk)
            return response.status, response.getheader("Location"), read
        finally:
            connection.close()

    def _connection(
        self, target: _Target, address: IPAddress, timeout_s: float
    ) -> http.client.HTTPConnection:
        if target.scheme == "https":
            context = self.ssl_context or ssl.create_default_context()
            return _PinnedHTTPSConnection(
                target.host, target.port, address, self.connector, timeout_s, context
            )
        return _PinnedHTTPConnection(target.host, target.port, address, self.connector, timeout_s)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to a checked address that still speaks the original host name."""

    def __init__(
        self, host: str, port: int, address: IPAddress, connector: Connector, timeout_s: float
    ) -> None:
        super().__init__(host, port, timeout=timeout_s)
        self._address = address
        self._connector = connector
        self._timeout_s = timeout_s

    def connect(self) -> None:
        """Connect to the pinned address instead of resolving the host again."""
        self.sock = self._connector(self._address, self.port, self._timeout_s)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """The TLS flavour: certificate and SNI checked against the original host name."""

    default_port = 443

    def __init__(
        self,
        host: str,
        port: int,
        address: IPAddress,
        connector: Connector,
        timeout_s: float,
        context: ssl.SSLContext,
    ) -> None:
        super().__init__(host, port, address, connector, timeout_s)
        self._context = context

    def connect(self) -> None:
        """Connect to the pinned address, then start TLS for the original host name."""
        super().connect()
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)


def _parse_target(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise _Refused(f"scheme {scheme or '(none)'} is not http or https")
    if not parts.hostname:
        raise ValueError("the URL names no host")
    host = _ascii_host(parts.hostname)
    port = parts.port or DEFAULT_PORTS[scheme]
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return _Target(scheme, host, port, path)


def _ascii_host(hostname: str) -> str:
    host = hostname.rstrip(".").lower()
    try:
        ip_address(host)
    except ValueError:
        return host.encode("idna").decode("ascii")
    return host


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("the reachability check ran out of time")
    return remaining


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


@dataclass(frozen=True)
class UrlCheck:
    """The check of a URL, with the probe's findings when the probe ran."""

    check: AssetCheck
    probe: ProbeResult | None = None


def is_shortener(host: str) -> bool:
    """Tell whether a host is a known URL shortener, by whole host or parent domain."""
    host = host.rstrip(".").lower()
    # Matching whole labels keeps "notbit.ly" and "bit.ly.example.com" out.
    return any(host == short or host.endswith("." + short) for short in SHORTENER_HOSTS)


def check_url(
    url: str,
    *,
    thresholds: VerificationThresholds,
    probe: Callable[[str], ProbeResult] | None = None,
) -> UrlCheck:
    """Apply the URL rules; probe reachability only when the thresholds switch it on."""
    card = ScoreCard(pass_score=thresholds.pass_score)
    if len(url) > thresholds.url_max_chars:
        card.fail_integrity(
            "url.too_long", f"The URL is over {thresholds.url_max_chars} characters."
        )
        return UrlCheck(card.finish())
    try:
        parts = urlsplit(url.strip())
        hostname = parts.hostname
        parts.port  # noqa: B018 - urlsplit validates the port lazily, on access.
    except ValueError:
        card.fail_integrity("url.invalid", "The URL cannot be parsed.")
        return UrlCheck(card.finish())
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        card.fail_integrity("url.scheme", "Only http and https URLs are accepted.")
        return UrlCheck(card.finish())
    if not hostname:
        card.fail_integrity("url.invalid", "The URL names no host.")
        return UrlCheck(card.finish())
    if parts.username is not None or parts.password is not None:
        card.flag("url.credentials", "The URL carries a user name or password before the host.")
    if is_shortener(hostname):
        card.flag("url.shortener", "The URL goes through a link shortener that hides its target.")
    try:
        literal: IPAddress | None = ip_address(hostname)
    except ValueError:
        literal = None
    if literal is not None and (reason := AddressPolicy().refusal(literal)) is not None:
        card.fail_integrity("url.forbidden_address", f"The URL points at a {reason}.")
        return UrlCheck(card.finish())
    if not thresholds.url_reachability_check:
        return UrlCheck(card.finish())

    result = (probe or UrlProbe.from_thresholds(thresholds))(url.strip())
    if result.refusal is not None:
        card.fail_integrity(
            "url.forbidden_address",
            f"The URL leads to an address that is never fetched: {result.refusal}.",
        )
    elif not result.reachable:
        detail = f"HTTP {result.status}" if result.status is not None else result.error
        card.flag("url.unreachable", f"The URL could not be reached ({detail}).")
    return UrlCheck(card.finish(), result)
