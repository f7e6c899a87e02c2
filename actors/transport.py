"""The broker as every process sees it: construction, dispatch, readiness, queue statistics.

The API and the scheduler only enqueue and observe, so they import this module and nothing
that declares actors or builds worker services (`actors.broker:setup` does that). It must
stay free of actor modules: tests/test_import_graph.py checks what importing the API loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from actors.dispatch import BrokerProbe, DramatiqDispatcher, RedisProbe
from actors.queue_stats import QueueStats, RedisQueueStats
from actors.rabbitmq import RabbitmqProbe, RabbitmqQueueStats, quiet_pika_logs
from actors.wakeful import WakefulRedisBroker
from service.db import SessionFactory
from service.domain.clock import utcnow
from service.domain.queues import QUEUE_NAMES
from service.settings import Settings


def redis_client(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=2, socket_timeout=10, health_check_interval=30
    )


def build_broker(
    settings: Settings,
    *,
    tracking: list[Any] | None = None,
    extra_middleware: list[Any] | None = None,
) -> dramatiq.Broker:
    """The broker settings select, with retry and time-limit middleware and the project's own.

    Redis (the default) gets the wake-token broker; `BROKER_URL=amqp://...` Dramatiq's
    RabbitMQ broker, with publisher confirms: a job counts as dispatched only once
    RabbitMQ has it. The middleware is the same on both.

    Dramatiq runs `after_*` hooks in reverse order, so `tracking` middleware sits before
    Retries in the list: its after_process_message then runs after Retries has decided
    whether the message is retried or failed for good.
    """
    middleware = [
        AgeLimit(),
        TimeLimit(),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        *(tracking or []),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=settings.min_backoff_ms,
            max_backoff=settings.max_backoff_ms,
        ),
        CurrentMessage(),
        *(extra_middleware or []),
    ]
    if settings.uses_rabbitmq:
        quiet_pika_logs()
        return RabbitmqBroker(url=settings.broker_url, confirm_delivery=True, middleware=middleware)
    return WakefulRedisBroker(  # type: ignore[no-untyped-call]
        client=redis_client(settings),
        middleware=middleware,
        heartbeat_timeout=settings.broker_heartbeat_timeout_ms,
        maintenance_chance=settings.broker_maintenance_chance,
    )


@dataclass(frozen=True)
class Transport:
    """What a process that only enqueues and observes needs of the broker."""

    broker: dramatiq.Broker
    dispatcher: DramatiqDispatcher
    probe: BrokerProbe
    queue_stats: QueueStats

    def close(self) -> None:
        """Close the broker's connections (RabbitMQ keeps one per thread that enqueued)."""
        self.broker.close()


def connect_transport(settings: Settings, sessions: SessionFactory) -> Transport:
    """The broker without worker middleware or actors, with its dispatcher, probe and stats.

    sessions: the job records, which RabbitMQ's statistics read for what AMQP cannot count.
    """
    broker = build_broker(settings)
    if settings.uses_rabbitmq:
        assert settings.broker_url is not None
        return Transport(
            broker=broker,
            dispatcher=DramatiqDispatcher(broker),
            probe=RabbitmqProbe(settings.broker_url),
            queue_stats=RabbitmqQueueStats(settings.broker_url, QUEUE_NAMES, sessions, utcnow),
        )
    client = redis_client(settings)
    return Transport(
        broker=broker,
        dispatcher=DramatiqDispatcher(broker),
        probe=RedisProbe(client),
        queue_stats=RedisQueueStats(client, QUEUE_NAMES),
    )
