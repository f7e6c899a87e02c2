"""The broker side of the outbox: a job record becomes a Dramatiq message with the job's id."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import dramatiq
import dramatiq.errors
import redis

from actors.wakeful import WakefulRedisBroker
from service.domain.jobs import BrokerUnavailable, JobMessage

#: What enqueue raises when the broker is unreachable: Redis's errors, and Dramatiq's
#: BrokerConnectionError (its RabbitMQ broker's, once its own reconnect attempts ran out).
BROKER_DOWN = (redis.ConnectionError, redis.TimeoutError, dramatiq.errors.BrokerConnectionError)

#: The message option that carries the id of the request that created the job.
REQUEST_ID_OPTION = "request_id"


def _message(job: JobMessage) -> dramatiq.Message[object]:
    # Retries re-enqueue the message with its options: every attempt keeps the request id.
    options = {REQUEST_ID_OPTION: job.request_id} if job.request_id else {}
    return dramatiq.Message(
        queue_name=job.queue_name,
        actor_name=job.actor_name,
        args=(job.subject_id,),
        kwargs={},
        options=options,
        message_id=job.id,
    )


class DramatiqDispatcher:
    """Send job records as messages; the message id is the job id, so hooks find the record."""

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker

    def dispatch(self, job: JobMessage) -> None:
        try:
            self.broker.enqueue(_message(job))
        except BROKER_DOWN as exc:
            raise BrokerUnavailable(str(exc)) from exc

    def dispatch_many(self, jobs: Sequence[JobMessage]) -> None:
        """Send a batch in one round trip on the wake-token Redis broker; all or none count."""
        try:
            if isinstance(self.broker, WakefulRedisBroker):
                self.broker.enqueue_many([_message(job) for job in jobs])
            else:
                for job in jobs:
                    self.broker.enqueue(_message(job))
        except BROKER_DOWN as exc:
            raise BrokerUnavailable(str(exc)) from exc


class BrokerProbe(Protocol):
    """Answers readiness checks for the broker."""

    def ping(self) -> bool: ...


class RedisProbe:
    """Answer readiness checks: is the broker's Redis reachable right now?"""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False
