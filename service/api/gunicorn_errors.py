"""gunicorn's own error responses (bad request line, NUL in a header, oversize headers) as JSON.

gunicorn answers requests it cannot parse before the app sees them, with an HTML page
written by `gunicorn.util.write_error`; every worker's `handle_error` calls it through the
module, so replacing that one function gives those answers the app's JSON error shape.
tests/api/test_gunicorn_edge.py runs real gunicorn and fails if a version stops calling it.
"""

from __future__ import annotations

import json
import socket

from gunicorn import util

MAX_DETAIL_CHARS = 200
# What a client should do about each status gunicorn produces.
ADVICE = {
    400: "fix the request line or headers (no control characters, no obsolete line folding)",
    403: "this request is not allowed",
    414: "shorten the request line (URL and query)",
    417: "remove the Expect header or send a supported expectation",
    431: "send fewer or smaller headers (each at most 8190 bytes)",
    501: "send the body with a supported transfer coding (chunked) or with Content-Length",
}


def json_error_response(status: int, reason: str, detail: str) -> bytes:
    """The raw HTTP response for one of gunicorn's errors, body in the API's error shape."""
    advice = ADVICE.get(status, "the server could not handle this request; try again")
    message = f"{advice}: {detail[:MAX_DETAIL_CHARS]}" if detail else advice
    body = json.dumps({"error": reason.lower().replace(" ", "_"), "message": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for gunicorn.util.write_error (same signature), writing JSON."""
    util.write_nonblock(sock, json_error_response(status_int, reason, mesg))


def install() -> None:
    """Make this process's gunicorn workers answer their own errors in JSON."""
    util.write_error = write_json_error
