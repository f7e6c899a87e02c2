"""Worker liveness per queue: each worker process stamps the queues it consumes."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

import dramatiq
import redis
from dramatiq.middleware import Middleware

from actors.queue_stats import HEARTBEAT_KEY, WORKER_STALE_AFTER_S

HEARTBEAT_INTERVAL_S = 5.0
BEATS_PER_TIMEOUT = 4

log = logging.getLogger(__name__)


class WorkerHeartbeat(Middleware):
    """Refresh `rift:workers:<queue>` (a sorted set scored by time) while the worker runs."""

    def __init__(self, client: redis.Redis, interval_s: float = HEARTBEAT_INTERVAL_S) -> None:
        self.client = client
        self.interval_s = interval_s
        self.worker_key = f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._queues: list[str] = []
        self._dramatiq_heartbeat: tuple[str, str] | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        self.worker_key = f"{socket.gethostname()}:{os.getpid()}"
        # Dramatiq's own liveness record of this process (see actors/redelivery.py): its
        # broker stamps it only on broker calls, which stop while every thread is busy.
        namespace = getattr(broker, "namespace", None)
        broker_id = getattr(broker, "broker_id", None)
        self._dramatiq_heartbeat = (
            (f"{namespace}:__heartbeats__", str(broker_id)) if namespace and broker_id else None
        )
        timeout_ms = getattr(broker, "heartbeat_timeout", None)
        if timeout_ms:
            # Several beats per timeout: one late beat must not make a live worker look dead.
            self.interval_s = min(self.interval_s, timeout_ms / 1000 / BEATS_PER_TIMEOUT)
        declared = worker.consumer_whitelist or broker.get_declared_queues()
        self._queues = sorted(q for q in declared if not q.endswith((".DQ", ".XQ")))
        self._stop.clear()
        self._beat()
        threading.Thread(target=self._run, name="rift-heartbeat", daemon=True).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        # No longer a worker that takes new messages; but Dramatiq's heartbeat goes on
        # while running jobs finish (a graceful stop may take up to the time limit).
        queues, self._queues = self._queues, []
        try:
            pipe = self.client.pipeline(transaction=False)
            for queue in queues:
                pipe.zrem(HEARTBEAT_KEY.format(queue=queue), self.worker_key)
            pipe.execute()
        except redis.RedisError:
            log.warning("could not remove worker heartbeat on shutdown")

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._beat()

    def _beat(self) -> None:
        now = time.time()
        try:
            pipe = self.client.pipeline(transaction=False)
            for queue in self._queues:
                key = HEARTBEAT_KEY.format(queue=queue)
                pipe.zadd(key, {self.worker_key: now})
                # Workers killed without a shutdown leave entries: trim the stale ones.
                pipe.zremrangebyscore(key, "-inf", now - 10 * WORKER_STALE_AFTER_S)
            if self._dramatiq_heartbeat is not None:
                heartbeats, broker_id = self._dramatiq_heartbeat
                # Dramatiq's scripts score it in milliseconds.
                pipe.zadd(heartbeats, {broker_id: int(now * 1000)})
            pipe.execute()
        except redis.RedisError:
            log.warning("worker heartbeat failed; will retry")
