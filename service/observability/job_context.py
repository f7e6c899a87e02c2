"""The ids a worker attaches to everything one message produces: log lines, Sentry events."""

from __future__ import annotations

import sentry_sdk
import structlog


def bind_job_context(
    *, job_id: str, actor: str, rift_id: str | None, request_id: str | None
) -> None:
    """Tag this thread's log lines and the message's Sentry scope with the job's ids.

    Never content: ids only. The Sentry tags land on the per-message scope that Sentry's
    Dramatiq middleware (first in the list) opened before this hook ran.
    """
    ids = {"job_id": job_id, "actor": actor, "rift_id": rift_id, "request_id": request_id}
    known = {name: value for name, value in ids.items() if value is not None}
    structlog.contextvars.bind_contextvars(**known)
    for name, value in known.items():
        sentry_sdk.set_tag(name, value)


def clear_job_context() -> None:
    """Forget the ids of the message this thread just finished."""
    structlog.contextvars.clear_contextvars()
