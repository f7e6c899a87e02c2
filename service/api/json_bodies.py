"""JSON request bodies, bounded: size, nesting depth and duplicate keys are refused as 4xx.

Python's parser recurses once per nesting level, so a body nested 10,000 deep raises
RecursionError (a 500) before any schema sees it; a scan of the raw bytes counts the depth
first. Duplicate keys are refused rather than "last one wins": two readers of the same
body (a proxy, a log, this service) must never see different values.
"""

from __future__ import annotations

import json
from typing import Any

import falcon
from falcon.media import BaseHandler

from service.domain.errors import PayloadTooLarge

MAX_JSON_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32


class MalformedBody(falcon.HTTPBadRequest):
    """The body is not JSON this service reads (400: there is no field to name yet)."""

    def __init__(self, description: str) -> None:
        super().__init__(title="malformed body", description=description)


def json_depth(raw: bytes) -> int:
    """Return the deepest nesting of arrays and objects in raw, outside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, value in pairs:
        if key in body:
            raise MalformedBody(f"the key {key!r} appears twice; send each key once")
        body[key] = value
    return body


def parse_json_body(raw: bytes) -> Any:
    """Parse a request body under the size, depth and duplicate-key rules."""
    if len(raw) > MAX_JSON_BODY_BYTES:
        raise PayloadTooLarge(f"a JSON body is at most {MAX_JSON_BODY_BYTES} bytes")
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise MalformedBody(f"JSON nested deeper than {MAX_JSON_DEPTH} levels; send a flat object")
    if not raw.strip():
        raise falcon.MediaNotFoundError("JSON")
    try:
        return json.loads(raw, object_pairs_hook=_refuse_duplicates)
    except ValueError as exc:  # UnicodeDecodeError is one too
        raise MalformedBody(f"the body is not valid UTF-8 JSON: {exc}") from None


class BoundedJsonHandler(BaseHandler):
    """Falcon's media handler for application/json requests, under the rules above."""

    def deserialize(
        self, stream: Any, content_type: str | None, content_length: int | None
    ) -> object:
        if content_length is not None and content_length > MAX_JSON_BODY_BYTES:
            raise PayloadTooLarge(f"a JSON body is at most {MAX_JSON_BODY_BYTES} bytes")
        # One byte past the limit is enough to know the body is too large.
        return parse_json_body(stream.read(MAX_JSON_BODY_BYTES + 1))

    def serialize(self, media: object, content_type: str | None) -> bytes:
        return json.dumps(media, ensure_ascii=False).encode()


def install(app: falcon.App[Any, Any]) -> None:
    """Use the bounded handler for JSON request bodies (responses keep Falcon's)."""
    handler = BoundedJsonHandler()
    app.req_options.media_handlers[falcon.MEDIA_JSON] = handler
