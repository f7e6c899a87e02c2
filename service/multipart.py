"""Encode a proof submission as multipart/form-data, as a seller's client sends it."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence


def encode_multipart(
    fields: Mapping[str, str], files: Sequence[tuple[str, bytes, str]] = ()
) -> tuple[bytes, str]:
    """Encode fields and (filename, content, content type) files sent as `files`.

    Returns the body and its Content-Type header (with the boundary). Used by the demo
    command, the tests and the benchmarks: every client of the proof endpoint here.
    """
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for filename, content, content_type in files:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; '
            f'filename="{filename}"\r\nContent-Type: {content_type}\r\n\r\n'.encode()
            + content
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
