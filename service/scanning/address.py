"""Where clamd listens, parsed from the one CLAMD_ADDRESS setting."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from service.scanning.errors import InvalidClamdAddress

_EXPECTED_FORMS = "expected tcp://HOST:PORT or unix:///ABSOLUTE/PATH"


@dataclass(frozen=True, slots=True)
class ClamdAddress:
    """A TCP host and port, or a unix socket path; exactly one of the two."""

    host: str | None = None
    port: int | None = None
    socket_path: str | None = None

    def __post_init__(self) -> None:
        is_tcp = self.host is not None and self.port is not None and self.socket_path is None
        is_unix = self.socket_path is not None and self.host is None and self.port is None
        if not (is_tcp or is_unix):
            raise InvalidClamdAddress(f"give host and port, or socket_path; {_EXPECTED_FORMS}")

    @classmethod
    def parse(cls, url: str) -> ClamdAddress:
        """Parse ``tcp://127.0.0.1:3310`` or ``unix:///run/clamav/clamd.ctl``."""
        parts = urlsplit(url.strip())
        if parts.scheme == "tcp":
            try:
                port = parts.port
            except ValueError as error:
                raise InvalidClamdAddress(f"bad port in {url!r}; {_EXPECTED_FORMS}") from error
            if not parts.hostname or port is None or parts.path not in ("", "/"):
                raise InvalidClamdAddress(f"{url!r} needs a host and a port; {_EXPECTED_FORMS}")
            return cls(host=parts.hostname, port=port)
        if parts.scheme == "unix":
            if parts.netloc or not parts.path.startswith("/"):
                raise InvalidClamdAddress(
                    f"{url!r} needs an absolute path after unix:// (three slashes); "
                    + _EXPECTED_FORMS
                )
            return cls(socket_path=parts.path)
        raise InvalidClamdAddress(f"unsupported clamd address {url!r}; {_EXPECTED_FORMS}")

    def connect(self, timeout_s: float) -> socket.socket:
        """Open a connection whose every operation times out after ``timeout_s``."""
        if self.socket_path is not None:
            unix_socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                unix_socket.settimeout(timeout_s)
                unix_socket.connect(self.socket_path)
            except BaseException:
                unix_socket.close()
                raise
            return unix_socket
        assert self.host is not None and self.port is not None  # by __post_init__
        return socket.create_connection((self.host, self.port), timeout=timeout_s)

    def __str__(self) -> str:
        if self.socket_path is not None:
            return f"unix://{self.socket_path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"
