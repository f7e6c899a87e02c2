"""The verification actor: check a proof's assets and decide its verdict."""

from __future__ import annotations

from typing import Any

import dramatiq

from actors.services import WorkerServices
from service.domain.jobs import PermanentJobError
from service.domain.queues import VERIFY_PROOF
from service.domain.verification import check_proof

VERIFY_TIME_LIMIT_MS = 120_000
VERIFY_MAX_AGE_MS = 24 * 3600 * 1000


def register(broker: dramatiq.Broker, services: WorkerServices) -> dramatiq.Actor[Any, Any]:
    """Declare verify_proof on broker, bound to services."""

    def verify_proof(proof_id: str) -> dict[str, Any]:
        result, verdict = check_proof(
            services.sessions,
            proof_id,
            services.inspect,
            services.rules,
            clock=services.clock,
            ids=services.ids,
        )
        services.metrics.observe_verdict(verdict)
        return result

    return dramatiq.actor(
        verify_proof,
        broker=broker,
        actor_name=VERIFY_PROOF.actor_name,
        queue_name=VERIFY_PROOF.queue_name,
        max_retries=services.settings.max_retries,
        min_backoff=services.settings.min_backoff_ms,
        max_backoff=services.settings.max_backoff_ms,
        time_limit=VERIFY_TIME_LIMIT_MS,
        max_age=VERIFY_MAX_AGE_MS,
        throws=(PermanentJobError,),
    )
