"""Queue snapshots, and the Redis broker's: read straight from Dramatiq's keys.

(RabbitMQ's are in actors/rabbitmq.py; both answer the same QueueStats interface.)
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import redis

DRAMATIQ_NAMESPACE = "dramatiq"
HEARTBEAT_KEY = "rift:workers:{queue}"
WORKER_STALE_AFTER_S = 30.0


@dataclass(frozen=True)
class QueueSnapshot:
    queue: str
    depth: int
    delayed: int
    dead_letters: int
    oldest_age_s: float
    workers_alive: int


class QueueStatsUnavailable(Exception):
    """The broker (or the job records) did not answer; no snapshot this time."""


class QueueStats(Protocol):
    """What the admin endpoint and the collector read of the broker's queues."""

    def read(self) -> list[QueueSnapshot]:
        """One snapshot per queue; raises QueueStatsUnavailable."""
        ...

    def snapshot(self) -> list[dict[str, object]]: ...


class RedisQueueStats:
    """One pipeline of cheap Redis reads per snapshot (LLEN/HLEN/ZCARD, no scans)."""

    def __init__(
        self, client: redis.Redis, queues: Sequence[str], namespace: str = DRAMATIQ_NAMESPACE
    ) -> None:
        self.client = client
        self.queues = tuple(queues)
        self.namespace = namespace

    def read(self) -> list[QueueSnapshot]:
        try:
            return self._read()
        except redis.RedisError as exc:
            raise QueueStatsUnavailable(f"Redis did not answer: {exc}") from exc

    def _read(self) -> list[QueueSnapshot]:
        now = time.time()
        pipe = self.client.pipeline(transaction=False)
        for queue in self.queues:
            base = f"{self.namespace}:{queue}"
            pipe.llen(base)
            pipe.hlen(f"{base}.DQ.msgs")
            pipe.zcard(f"{base}.XQ")
            pipe.lindex(base, 0)
            pipe.zcount(HEARTBEAT_KEY.format(queue=queue), now - WORKER_STALE_AFTER_S, "+inf")
        replies = pipe.execute()
        snapshots = []
        for i, queue in enumerate(self.queues):
            depth, delayed, dead, head_id, alive = replies[i * 5 : i * 5 + 5]
            snapshots.append(
                QueueSnapshot(
                    queue=queue,
                    depth=int(depth),
                    delayed=int(delayed),
                    dead_letters=int(dead),
                    oldest_age_s=self._age_of(queue, head_id, now),
                    workers_alive=int(alive),
                )
            )
        return snapshots

    def snapshot(self) -> list[dict[str, object]]:
        return [asdict(s) for s in self.read()]

    def _age_of(self, queue: str, redis_message_id: bytes | None, now: float) -> float:
        # The head of the list is the message that has waited longest.
        if redis_message_id is None:
            return 0.0
        raw = self.client.hget(f"{self.namespace}:{queue}.msgs", redis_message_id)
        if raw is None:
            return 0.0
        try:
            enqueued_ms = int(json.loads(raw)["message_timestamp"])
        except (ValueError, KeyError, TypeError):
            return 0.0
        return max(0.0, now - enqueued_ms / 1000)
