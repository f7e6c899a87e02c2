"""Sentry: API 5xx through the Falcon integration; jobs only when they finally fail."""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.integrations.falcon import FalconIntegration
from sentry_sdk.integrations.logging import LoggingIntegration

from service.settings import Settings

SCRUBBED_HEADERS = ("authorization", "cookie", "idempotency-key")


def _scrub(event: Any, hint: Any) -> Any:
    request = event.get("request") or {}
    # Proof uploads and bearer tokens never leave the service.
    request.pop("data", None)
    headers = request.get("headers") or {}
    for name in list(headers):
        if name.lower() in SCRUBBED_HEADERS:
            headers[name] = "[Filtered]"
    return event


def init_sentry(settings: Settings, component: str) -> bool:
    """Start Sentry when SENTRY_DSN is set; return whether it was started."""
    if not settings.sentry_dsn:
        return False
    integrations: list[Any] = [LoggingIntegration(event_level=None)]
    if component == "api":
        integrations.append(FalconIntegration())
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.environment,
        integrations=integrations,
        # The Dramatiq integration reports every failed attempt; a retried job is not an
        # incident, so workers report once, from the final-failure hook, instead.
        disabled_integrations=[_dramatiq_integration()],
        send_default_pii=False,
        max_request_body_size="never",
        before_send=_scrub,
        server_name=component,
    )
    sentry_sdk.set_tag("component", component)
    return True


def _dramatiq_integration() -> Any:
    from sentry_sdk.integrations.dramatiq import DramatiqIntegration

    return DramatiqIntegration()


def report_final_failure(
    *,
    job_id: str,
    actor: str,
    queue: str,
    rift_id: str | None,
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
        scope.set_context("job", {"attempts": attempts, "final_state_reason": reason})
        scope.fingerprint = ["job-final-failure", actor, type(error).__name__ if error else reason]
        if error is not None:
            sentry_sdk.capture_exception(error)
        else:
            sentry_sdk.capture_message(f"job {job_id} ({actor}) failed: {reason}", level="error")
