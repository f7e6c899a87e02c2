"""A local Sentry endpoint: receives envelopes over HTTP and keeps them for assertions.

Speaks the part of Sentry's ingestion API the SDK uses: POST /api/<project>/envelope/
with a (usually gzip-compressed) envelope body. An envelope is a JSON header line, then
items, each a JSON header line and a payload whose size is the header's "length" or, when
absent, runs to the next newline.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ENVELOPE_PATH = re.compile(r"^/api/(?P<project>\d+)/envelope/$")


@dataclass(frozen=True)
class EnvelopeItem:
    headers: dict[str, Any]
    payload: bytes

    @property
    def type(self) -> str:
        return str(self.headers.get("type", ""))

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass(frozen=True)
class Envelope:
    project: str
    headers: dict[str, Any]
    items: tuple[EnvelopeItem, ...]
    #: The body after decompression: what to search for things that must not leave.
    raw: bytes


def parse_envelope(data: bytes, project: str = "") -> Envelope:
    """Split an envelope into its header and items; raise ValueError if it is malformed."""
    header_line, _, rest = data.partition(b"\n")
    headers = json.loads(header_line)
    items: list[EnvelopeItem] = []
    pos = 0
    while pos < len(rest):
        end = rest.find(b"\n", pos)
        end = len(rest) if end == -1 else end
        if end == pos:  # a trailing newline after the last item
            pos += 1
            continue
        item_headers = json.loads(rest[pos:end])
        pos = end + 1
        length = item_headers.get("length")
        if length is None:
            end = rest.find(b"\n", pos)
            end = len(rest) if end == -1 else end
            payload, pos = rest[pos:end], end + 1
        else:
            if pos + int(length) > len(rest):
                raise ValueError(f"item declares {length} bytes, envelope has fewer")
            payload, pos = rest[pos : pos + int(length)], pos + int(length)
        items.append(EnvelopeItem(item_headers, payload))
    return Envelope(project=project, headers=headers, items=tuple(items), raw=data)


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "identity":
        return body
    raise ValueError(f"unsupported Content-Encoding {encoding!r}")


class SentryInbox:
    """An HTTP server on 127.0.0.1 that stores every envelope it is sent."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        #: Requests it could not accept (wrong path, bad encoding, bad envelope).
        self.rejected: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.port}/1"

    def start(self) -> SentryInbox:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def events(self) -> list[dict[str, Any]]:
        """Return the error events received so far (not sessions or client reports)."""
        with self._lock:
            return [
                item.json()
                for envelope in self.envelopes
                for item in envelope.items
                if item.type == "event"
            ]

    def raw(self) -> bytes:
        """Return every envelope received, decompressed, concatenated."""
        with self._lock:
            return b"\n".join(envelope.raw for envelope in self.envelopes)

    def wait_for_events(self, count: int, timeout_s: float) -> list[dict[str, Any]]:
        """Wait until at least count events arrived; return all of them."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            events = self.events()
            if len(events) >= count:
                return events
            time.sleep(0.05)
        raise AssertionError(
            f"expected {count} Sentry events within {timeout_s}s, got {len(self.events())}"
            f" (rejected requests: {self.rejected})"
        )

    def _receive(self, path: str, body: bytes, content_encoding: str | None) -> int:
        match = ENVELOPE_PATH.match(path.split("?", 1)[0])
        try:
            if match is None:
                raise ValueError(f"not an envelope endpoint: {path}")
            envelope = parse_envelope(decode_body(body, content_encoding), match["project"])
        except (ValueError, OSError, zlib.error) as exc:  # bad JSON, gzip, deflate
            with self._lock:
                self.rejected.append(str(exc))
            return 400
        with self._lock:
            self.envelopes.append(envelope)
        return 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = inbox._receive(self.path, body, self.headers.get("Content-Encoding"))
                reply = b"{}"
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
