"""The verification actor: check a proof's assets and decide its verdict."""

from __future__ import annotations

from typing import Any

import dramatiq

from actors.declare import declare_actor
from actors.services import WorkerServices
from service.domain.queues import VERIFY_PROOF
from service.domain.verification import check_proof


def register(
    broker: dramatiq.Broker, services: WorkerServices
) -> dramatiq.Actor[[str], dict[str, Any]]:
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

    return declare_actor(broker, VERIFY_PROOF, verify_proof, services)
