"""Which request the current work is done for: its id follows every job that work creates.

The API sets it for the length of a request; new_job stores it on the job record, the
dispatcher puts it on the message, and the worker binds it into each line it logs, so one
id leads from a submission to its verdict. A ContextVar, so threads never see each
other's id.
"""

from __future__ import annotations

from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("rift_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served, or None outside one (scheduler, CLI)."""
    return _request_id.get()


def set_request_id(request_id: str | None) -> None:
    """Mark the work this thread does from now on as done for request_id (None: for none)."""
    _request_id.set(request_id)
