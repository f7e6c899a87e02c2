"""Structured logs: JSON in production, readable in development; never proof content."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

REDACTED_KEYS = frozenset({"license_key", "authorization", "token", "password", "text"})


def _redact(_: object, __: str, event: structlog.types.EventDict) -> structlog.types.EventDict:
    for key in REDACTED_KEYS & event.keys():
        event[key] = "[redacted]"
    return event


def _renderers(log_format: str) -> list[structlog.types.Processor]:
    if log_format == "json":
        # exc_info arrives as True or a (type, value, traceback) tuple, which JSONRenderer
        # would write as reprs and lose the traceback: render it to text ("exception") first.
        return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    # Plain tracebacks: with rich installed (a test tool pulls it in) structlog would render
    # each one with syntax highlighting, which takes seconds of a worker thread per failure.
    return [
        structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    ]


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Route stdlib and structlog records through one renderer."""
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        structlog.processors.StackInfoRenderer(),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *_renderers(log_format),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def log_context() -> dict[str, object]:
    """The ids bound to this thread's log lines (request_id, job_id, rift_id, ...)."""
    return structlog.contextvars.get_contextvars()


@contextmanager
def bound_log_context(**ids: str | None) -> Iterator[None]:
    """Carry these ids on every log line inside the block; ids given as None are left out.

    On exit the context is what it was before, so a nested block cannot leak its ids
    into the lines that follow it.
    """
    tokens = structlog.contextvars.bind_contextvars(
        **{key: value for key, value in ids.items() if value is not None}
    )
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
