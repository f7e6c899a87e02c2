"""Where a URL points: its scheme, host and port parsed once, and which addresses are refused.

Hosts are read the way the C library reads them (inet_aton): "2130706433", "0x7f000001",
"0177.0.0.1", "127.1" and "127.0.0.1." all name 127.0.0.1 to a resolver, so they name it
to the address rules too, before any private/loopback/metadata check.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import urlsplit

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
# Cloud instance-metadata endpoints (AWS, AWS ECS, AWS IPv6, Alibaba): refused even when a
# policy widens the allowed networks, because reaching them leaks credentials.
METADATA_ADDRESSES = frozenset(
    ip_address(text)
    for text in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
NAT64_PREFIX = ip_network("64:ff9b::/96")
# inet_aton's forms: the last part fills every byte the earlier parts left (a.b.c.d,
# a.b.c with 16 bits last, a.b with 24, a alone with 32).
_LAST_PART_BITS = {1: 32, 2: 24, 3: 16, 4: 8}


class MalformedUrl(ValueError):
    """The URL cannot be parsed, or names no host."""


class UnsupportedScheme(ValueError):
    """The URL's scheme is not http or https."""


@dataclass(frozen=True)
class Target:
    """A URL parsed once: what the rules check and what the probe connects to."""

    scheme: str
    host: str  # lower case, IDNA-encoded, without a trailing dot
    port: int
    path: str  # with the query, as sent in the request line
    has_credentials: bool
    # The address the host spells as a literal (any inet_aton form, or IPv6), if it does.
    literal: IPAddress | None


def parse_target(url: str) -> Target:
    """Parse a URL's scheme, host and port; raise MalformedUrl or UnsupportedScheme."""
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        port = parts.port  # urlsplit validates the port lazily, on access
    except ValueError as exc:
        raise MalformedUrl("The URL cannot be parsed.") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UnsupportedScheme(f"scheme {scheme or '(none)'} is not http or https")
    if not hostname:
        raise MalformedUrl("The URL names no host.")
    host = hostname.rstrip(".").lower()
    literal = host_address(host)
    if literal is not None:
        host = str(literal)
    else:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise MalformedUrl("The URL's host is not a valid domain name.") from exc
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(
        scheme=scheme,
        host=host,
        port=port or DEFAULT_PORTS[scheme],
        path=path,
        has_credentials=parts.username is not None or parts.password is not None,
        literal=literal,
    )


def host_address(host: str) -> IPAddress | None:
    """Read a host as an address literal the way a resolver would, or None for a name."""
    host = host.rstrip(".")
    try:
        return ip_address(host)
    except ValueError:
        pass
    return _inet_aton(host)


def _inet_aton(host: str) -> IPv4Address | None:
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = [_inet_aton_number(part) for part in parts]
    if any(number is None for number in numbers):
        return None
    *leading, last = [number for number in numbers if number is not None]
    if any(number > 0xFF for number in leading) or last >= 1 << _LAST_PART_BITS[len(parts)]:
        return None
    value = 0
    for number in leading:
        value = value << 8 | number
    return IPv4Address(value << _LAST_PART_BITS[len(parts)] | last)


def _inet_aton_number(part: str) -> int | None:
    """Read one part: 0x-prefixed hex, 0-prefixed octal, or decimal (as inet_aton does)."""
    lowered = part.lower()
    try:
        if lowered.startswith("0x"):
            return int(lowered[2:], 16) if len(lowered) > 2 else None
        if len(lowered) > 1 and lowered.startswith("0"):
            return int(lowered[1:], 8)
        return int(lowered, 10) if lowered.isdigit() else None
    except ValueError:
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
