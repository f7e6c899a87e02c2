"""Gunicorn's error and access logs through the app's renderer, so they share one shape.

The access line is a structured event ("request") with the fields an operator filters on,
and the request id the app echoed in `X-Request-ID`, which every app log line of that
request also carries.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gunicorn.glogging import Logger

from service.observability.logs import configure_logging

REQUEST_ID_HEADER = "x-request-id"


def _status_code(resp: Any) -> int | None:
    # A string such as "200 OK" on a normal response, an int on some error paths.
    status = getattr(resp, "status", None)
    if isinstance(status, int):
        return status
    if isinstance(status, str) and status[:3].isdigit():
        return int(status[:3])
    return None


def _header(resp: Any, name: str) -> str | None:
    for key, value in getattr(resp, "headers", None) or ():
        if key.lower() == name:
            return str(value)
    return None


def access_fields(resp: Any, environ: dict[str, Any], request_time: timedelta) -> dict[str, object]:
    """One request's access-log fields; never its query string, headers or body."""
    return {
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO"),
        "status": _status_code(resp),
        "duration_ms": round(request_time.total_seconds() * 1000, 3),
        "response_bytes": getattr(resp, "sent", None),
        "request_id": _header(resp, REQUEST_ID_HEADER),
        "remote_addr": environ.get("REMOTE_ADDR"),
    }


class StructuredLogger(Logger):  # type: ignore[misc]  # gunicorn ships no type hints
    """Gunicorn's logger, writing through the root handler `configure_logging` installs.

    Every line goes to stderr like the app's own; gunicorn's log-file options are not
    honoured (supervisord collects the stream).
    """

    log_format = "console"

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        configure_logging(self.log_format)
        for log in (self.error_log, self.access_log):
            # Gunicorn's own handlers would write a second, differently shaped line.
            log.handlers[:] = []
            log.propagate = True

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if self.cfg.accesslog is None:  # no access log configured
            return
        self.access_log.info("request", extra=access_fields(resp, environ, request_time))


def gunicorn_logger_class(log_format: str) -> type[StructuredLogger]:
    """The `logger_class` for deploy/gunicorn.conf.py, rendering as `log_format` says."""
    return type("StructuredLogger", (StructuredLogger,), {"log_format": log_format})
