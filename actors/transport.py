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
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from actors.dispatch import DramatiqDispatcher, RedisProbe
from actors.queue_stats import RedisQueueStats
from actors.wakeful import WakefulRedisBroker
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
) -> WakefulRedisBroker:
    """A Redis broker with retry and time-limit middleware, plus the project's own.

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
    probe: RedisProbe
    queue_stats: RedisQueueStats


def connect_transport(settings: Settings) -> Transport:
    """The broker without worker middleware or actors, with its dispatcher, probe and stats."""
    broker = build_broker(settings)
    client = redis_client(settings)
    return Transport(
        broker=broker,
        dispatcher=DramatiqDispatcher(broker),
        probe=RedisProbe(client),
        queue_stats=RedisQueueStats(client, QUEUE_NAMES),
    )
