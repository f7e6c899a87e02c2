"""Checks on a request's framing, before any resource reads it."""

from __future__ import annotations

import falcon


class LengthRequiredMiddleware:
    """Refuse a body sent without Content-Length (chunked) with 411 instead of misreading it.

    Falcon reads a body up to its Content-Length; without one it reads nothing, so a chunked
    JSON body would look empty and a chunked upload malformed. Every size limit is also
    checked against the declared length before a byte is stored. Clients can always send
    the length, so asking for it is simpler and safer than a second, unbounded read path.
    """

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.content_length is None and req.get_header("Transfer-Encoding"):
            raise falcon.HTTPLengthRequired(
                title="length required",
                description="send the body with a Content-Length header (chunked bodies "
                "are not accepted)",
            )
