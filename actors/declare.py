"""Declare an actor the same way for every kind of job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq

from actors.services import WorkerServices
from service.domain.jobs import PermanentJobError
from service.domain.queues import JobKind


def declare_actor(
    broker: dramatiq.Broker,
    kind: JobKind,
    fn: Callable[[str], dict[str, Any]],
    services: WorkerServices,
) -> dramatiq.Actor[[str], dict[str, Any]]:
    """Register fn for kind on broker with the retry, time and age limits kind declares."""
    settings = services.settings
    return dramatiq.Actor(
        fn,
        broker=broker,
        actor_name=kind.actor_name,
        queue_name=kind.queue_name,
        priority=0,
        options={
            "max_retries": kind.retries(settings.max_retries),
            "min_backoff": settings.min_backoff_ms,
            "max_backoff": settings.max_backoff_ms,
            "time_limit": kind.time_limit_ms,
            "max_age": kind.max_age_ms,
            # Retrying a job whose subject is gone or invalid can never help.
            "throws": (PermanentJobError,),
        },
    )
