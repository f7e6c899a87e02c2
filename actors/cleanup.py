"""The cleanup actor: delete a closed rift's stored proof."""

from __future__ import annotations

from typing import Any

import dramatiq

from actors.services import WorkerServices
from service.domain.cleanup import clean_up_rift
from service.domain.jobs import PermanentJobError
from service.domain.queues import CLEAN_UP_RIFT

CLEANUP_TIME_LIMIT_MS = 300_000
CLEANUP_MAX_AGE_MS = 7 * 24 * 3600 * 1000


def register(broker: dramatiq.Broker, services: WorkerServices) -> dramatiq.Actor[Any, Any]:
    """Declare clean_up_rift on broker, bound to services."""

    def clean_up(rift_id: str) -> dict[str, Any]:
        return clean_up_rift(services.sessions, services.blobs, rift_id, services.clock)

    return dramatiq.actor(
        clean_up,
        broker=broker,
        actor_name=CLEAN_UP_RIFT.actor_name,
        queue_name=CLEAN_UP_RIFT.queue_name,
        max_retries=services.settings.max_retries,
        min_backoff=services.settings.min_backoff_ms,
        max_backoff=services.settings.max_backoff_ms,
        time_limit=CLEANUP_TIME_LIMIT_MS,
        max_age=CLEANUP_MAX_AGE_MS,
        throws=(PermanentJobError,),
    )
