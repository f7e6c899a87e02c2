"""The cleanup actor: delete a closed rift's stored proof."""

from __future__ import annotations

from typing import Any

import dramatiq

from actors.declare import declare_actor
from actors.services import WorkerServices
from service.domain.cleanup import clean_up_rift
from service.domain.queues import CLEAN_UP_RIFT


def register(
    broker: dramatiq.Broker, services: WorkerServices
) -> dramatiq.Actor[[str], dict[str, Any]]:
    """Declare clean_up_rift on broker, bound to services."""

    def clean_up(rift_id: str) -> dict[str, Any]:
        return clean_up_rift(services.sessions, services.blobs, rift_id, services.clock)

    return declare_actor(broker, CLEAN_UP_RIFT, clean_up, services)
