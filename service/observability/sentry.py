"""Sentry: API 5xx through the Falcon integration; jobs only when they finally fail."""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.integrations import Integration
from sentry_sdk.integrations.dramatiq import DramatiqIntegration
from sentry_sdk.integrations.falcon import FalconIntegration
from sentry_sdk.integrations.logging import LoggingIntegration

from service.observability.redaction import elide_values
from service.settings import Settings

SCRUBBED_HEADERS = ("authorization", "cookie", "idempotency-key")
#: Bounds how long a worker thread waits for a final-failure event to be delivered.
FINAL_FAILURE_FLUSH_TIMEOUT_S = 2.0


def _is_attempt_failure(event: Any) -> bool:
    """Is this the Dramatiq integration's event for one failed attempt?"""
    values = (event.get("exception") or {}).get("values") or []
    return any((value.get("mechanism") or {}).get("type") == "dramatiq" for value in values)


def _before_send(event: Any, hint: Any) -> Any:
    # A failed attempt that will be retried is not an incident; a job is reported once, by
    # report_final_failure, when it has failed for good.
    if _is_attempt_failure(event):
        return None
    request = event.get("request") or {}
    # Proof uploads and bearer tokens never leave the service.
    request.pop("data", None)
    headers = request.get("headers") or {}
    for name in list(headers):
        if name.lower() in SCRUBBED_HEADERS:
            headers[name] = "[Filtered]"
    _scrub_messages(event)
    return event


def _scrub_messages(event: Any) -> None:
    """Keep each error's class and a message without values; drop what log calls attached.

    Exception messages and log breadcrumbs are where values slip in (a driver quoting the
    value it rejected, a log line's `error` field); the class and the stack say enough.
    """
    for value in (event.get("exception") or {}).get("values") or []:
        if isinstance(value.get("value"), str):
            value["value"] = elide_values(value["value"])
    crumbs = event.get("breadcrumbs") or {}
    for crumb in crumbs.get("values", []) if isinstance(crumbs, dict) else crumbs:
        crumb.pop("data", None)
        if isinstance(crumb.get("message"), str):
            crumb["message"] = elide_values(crumb["message"])


def init_sentry(settings: Settings, component: str) -> bool:
    """Start Sentry when SENTRY_DSN is set; return whether it was started."""
    if not settings.sentry_dsn:
        return False
    integrations: list[Integration] = [LoggingIntegration(event_level=None)]
    if component == "api":
        integrations.append(FalconIntegration())
    if component == "worker":
        # A scope per message: an event carries its own job's breadcrumbs, not its
        # neighbours'. Must be set up before the broker exists (it patches Broker.__init__).
        integrations.append(DramatiqIntegration())
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.environment,
        integrations=integrations,
        send_default_pii=False,
        max_request_body_size="never",
        # Frames' local variables hold settings (secrets), decrypted license keys and file
        # chunks; the stack trace without them is enough to find the line.
        include_local_variables=False,
        before_send=_before_send,
        server_name=component,
    )
    sentry_sdk.set_tag("component", component)
    return True


def report_final_failure(
    *,
    job_id: str,
    actor: str,
    queue: str,
    rift_id: str | None,
    request_id: str | None = None,
    attempts: int,
    error: BaseException | None,
    reason: str,
) -> None:
    """Send one Sentry event for a job that will not be tried again."""
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("job_id", job_id)
        scope.set_tag("actor", actor)
        scope.set_tag("queue", queue)
        scope.set_tag("rift_id", rift_id or "none")
        scope.set_tag("request_id", request_id or "none")
        scope.set_context("job", {"attempts": attempts, "final_state_reason": reason})
        scope.fingerprint = ["job-final-failure", actor, type(error).__name__ if error else reason]
        if error is not None:
            sentry_sdk.capture_exception(error)
        else:
            sentry_sdk.capture_message(f"job {job_id} ({actor}) failed: {reason}", level="error")
    # Dramatiq's worker processes end with os._exit, which skips the SDK's flush at exit:
    # wait (briefly) for delivery rather than lose the event in a restart. Final failures
    # are rare, so the wait costs little.
    sentry_sdk.flush(timeout=FINAL_FAILURE_FLUSH_TIMEOUT_S)
