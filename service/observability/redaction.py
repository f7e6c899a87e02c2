"""Error text that is safe to log, report and show: the error's class and a message without
bound values or proof content.

A database error is where a seller's words reach an error message: PostgreSQL's DETAIL line
quotes the failing row ("Failing row contains (...)"), and drivers quote the value they
could not convert. Engines hide bound parameters (`hide_parameters`), `redact_database_error`
cuts the message down to its primary line with quoted values elided, before anything (a log
line, a traceback, Sentry, a job's last_error) turns the exception into text.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.exc import DBAPIError

MAX_SAFE_MESSAGE_CHARS = 300
ELIDED = "…"
# Quoted literals in an error message are where values sit: 'abc', "abc", (abc) after "=".
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|=\([^)]*\)")


def elide_values(message: str) -> str:
    """Return the first line of message with quoted literals replaced, within a length cap."""
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    return _QUOTED.sub(ELIDED, first_line)[:MAX_SAFE_MESSAGE_CHARS]


def safe_error_text(error: BaseException) -> str:
    """`ClassName: message` with no values in it, for last_error, logs and Sentry."""
    name = type(error).__name__
    if isinstance(error, DBAPIError) and error.orig is not None:
        return f"{name}: {_driver_summary(error.orig)}"
    message = elide_values(str(error))
    return f"{name}: {message}" if message else name


def _driver_summary(orig: BaseException) -> str:
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(orig)
    summary = f"{type(orig).__module__}.{type(orig).__name__}: {elide_values(primary)}"
    constraint = getattr(diag, "constraint_name", None)
    return f"{summary} (constraint {constraint})" if constraint else summary


def redact_database_error(context: Any) -> None:
    """SQLAlchemy `handle_error` hook: strip values from the driver's and SQLAlchemy's text.

    Both messages are fixed when the exceptions are built, so the hook rewrites their args:
    the exception types, SQLSTATE and constraint name stay for callers that branch on them.
    """
    if context.original_exception is not None:
        redact_driver_error(context.original_exception, context.sqlalchemy_exception)


def redact_driver_error(orig: BaseException, wrapped: BaseException | None) -> None:
    """Rewrite a driver error (and SQLAlchemy's wrapper of it) to its redacted text."""
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) or str(orig)
    safe = elide_values(primary)
    orig.args = (safe,)
    if isinstance(wrapped, DBAPIError):
        wrapped.args = (f"({type(orig).__module__}.{type(orig).__name__}) {safe}",)
