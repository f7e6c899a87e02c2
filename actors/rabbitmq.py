"""RabbitMQ as the broker: readiness and queue statistics (Dramatiq's RabbitmqBroker sends).

Queue statistics come from two places, each where it is exact:
- RabbitMQ's own counts, read by a passive `queue.declare` per queue (plain AMQP, no
  management plugin): messages ready on the queue (depth) and on its dead-letter queue,
  and the consumers attached, one per worker process consuming the queue (liveness: a
  worker that dies drops its connection, and RabbitMQ its consumer, at once).
- the job records for what AMQP cannot see: a delayed retry sits unacknowledged in a
  worker's prefetch until it is due, and AMQP can count but not peek at a queue. So
  "delayed" is the number of RETRYING jobs, and the oldest waiting age is that of the
  oldest QUEUED job, both per queue.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pika
import pika.exceptions
from dramatiq.common import xq_name
from sqlalchemy.exc import SQLAlchemyError

from actors.queue_stats import QueueSnapshot, QueueStatsUnavailable
from service.db import SessionFactory
from service.domain.clock import Clock, as_utc
from service.domain.job_queries import QueueBacklog, backlog_by_queue

#: Probes and statistics must answer quickly even when RabbitMQ does not.
PROBE_TIMEOUT_S = 2.0
#: AMQP's reply code for a queue that does not exist.
NOT_FOUND = 404


def quiet_pika_logs() -> None:
    """Keep pika's connection chatter (a dozen INFO lines per connection) out of our logs.

    Probes and statistics open a connection per read, so at INFO pika would log more than
    the service itself; its warnings and errors still come through.
    """
    logging.getLogger("pika").setLevel(logging.WARNING)


def connection_parameters(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> Any:
    """Parameters for a short-lived connection to the broker at url, with bounded waits."""
    parameters = pika.URLParameters(url)
    parameters.socket_timeout = timeout_s
    parameters.stack_timeout = timeout_s
    parameters.blocked_connection_timeout = timeout_s
    parameters.connection_attempts = 1
    return parameters


class RabbitmqProbe:
    """Answer readiness checks: does RabbitMQ accept a connection right now?"""

    def __init__(self, url: str) -> None:
        self.parameters = connection_parameters(url)

    def ping(self) -> bool:
        try:
            connection = pika.BlockingConnection(self.parameters)
        except pika.exceptions.AMQPError:
            return False
        connection.close()
        return True


@dataclass(frozen=True)
class AmqpCounts:
    ready: int
    dead_letters: int
    consumers: int


class RabbitmqQueueStats:
    """Queue snapshots from RabbitMQ's counts and the job records (see the module docstring)."""

    def __init__(
        self, url: str, queues: Sequence[str], sessions: SessionFactory, clock: Clock
    ) -> None:
        self.parameters = connection_parameters(url)
        self.queues = tuple(queues)
        self.sessions = sessions
        self.clock = clock

    def read(self) -> list[QueueSnapshot]:
        counts = self._amqp_counts()
        try:
            with self.sessions() as session:
                backlog = backlog_by_queue(session)
        except SQLAlchemyError as exc:
            raise QueueStatsUnavailable(f"job records unreadable: {exc}") from exc
        now = self.clock()
        snapshots = []
        for queue in self.queues:
            amqp = counts[queue]
            waiting = backlog.get(queue, QueueBacklog(retrying=0, oldest_queued_at=None))
            oldest = waiting.oldest_queued_at
            snapshots.append(
                QueueSnapshot(
                    queue=queue,
                    depth=amqp.ready,
                    delayed=waiting.retrying,
                    dead_letters=amqp.dead_letters,
                    oldest_age_s=0.0
                    if oldest is None
                    else max(0.0, (now - as_utc(oldest)).total_seconds()),
                    workers_alive=amqp.consumers,
                )
            )
        return snapshots

    def snapshot(self) -> list[dict[str, object]]:
        return [asdict(s) for s in self.read()]

    def _amqp_counts(self) -> dict[str, AmqpCounts]:
        try:
            connection = pika.BlockingConnection(self.parameters)
        except pika.exceptions.AMQPError as exc:
            raise QueueStatsUnavailable(f"RabbitMQ did not answer: {exc!r}") from exc
        try:
            channel = connection.channel()
            counts = {}
            for queue in self.queues:
                ready, consumers, channel = _declared(connection, channel, queue)
                dead, _, channel = _declared(connection, channel, xq_name(queue))
                counts[queue] = AmqpCounts(ready=ready, dead_letters=dead, consumers=consumers)
            return counts
        except pika.exceptions.AMQPError as exc:
            raise QueueStatsUnavailable(f"RabbitMQ did not answer: {exc!r}") from exc
        finally:
            if connection.is_open:
                connection.close()


def _declared(connection: Any, channel: Any, queue: str) -> tuple[int, int, Any]:
    """A queue's ready messages and consumers; (0, 0) if nothing declared it yet.

    A passive declare of a missing queue closes the channel (404): the next read needs a
    new one, returned with the counts.
    """
    try:
        reply = channel.queue_declare(queue=queue, passive=True)
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code != NOT_FOUND:
            raise
        return 0, 0, connection.channel()
    return reply.method.message_count, reply.method.consumer_count, channel
