"""A Redis broker whose idle consumers block until a message arrives, instead of polling.

Dramatiq's Redis consumer sleeps with a growing back-off (up to the worker timeout, 1 s by
default) whenever its queue is empty, so a message sent to an idle worker waits for the
sleep to end: about 70-100 ms at sparse traffic. Shortening the timeout trades that wait
for idle Redis load (hundreds of fetches a second per consumer). Here each enqueue also
pushes a token onto a small per-queue "wake" list, and an idle consumer waits on it with
BLPOP for as long as it would have slept: pickup takes one round trip, idle load stays at
about one call per second per consumer. Messages are still only ever taken by Dramatiq's
own fetch script, so delivery guarantees are unchanged; a lost or stale token only costs
one sleep interval or one empty fetch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from uuid import uuid4

import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.common import compute_backoff, current_millis
from dramatiq.errors import ConnectionClosed
from dramatiq.message import Message

WAKE_KEY = "rift:wake:{queue}"
# Tokens beyond this are pointless: each one only lets a consumer skip one wait.
WAKE_TOKENS_MAX = 16
MIN_BLOCK_S = 0.001  # BLPOP's 0 means "forever"


def wake_key(queue_name: str) -> str:
    return WAKE_KEY.format(queue=queue_name)


class WakefulRedisBroker(RedisBroker):
    """RedisBroker plus wake tokens: see the module docstring."""

    @property
    def consumer_class(self) -> type[_RedisConsumer]:
        return _WakefulConsumer

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        enqueued: Message[Any] = super().enqueue(message, delay=delay)
        if delay is None:
            key = wake_key(message.queue_name)
            pipe = self.client.pipeline(transaction=False)
            pipe.lpush(key, 1)
            pipe.ltrim(key, 0, WAKE_TOKENS_MAX - 1)
            pipe.execute()
        return enqueued

    def enqueue_many(self, messages: Sequence[Message[Any]]) -> None:
        """Enqueue undelayed messages in one round trip: per message the same script, hooks
        and wake token as `enqueue`. On a connection error none count as sent (the outbox
        sends them again; delivery is at least once either way)."""
        prepared = [m.copy(options={"redis_message_id": str(uuid4())}) for m in messages]
        for message in prepared:
            self.emit_before("enqueue", message, None)
        try:
            self._pipeline_enqueue(prepared)
        except redis.exceptions.NoScriptError:
            # Redis lost the script (restart, SCRIPT FLUSH), so nothing went in: reload, resend.
            script = self.scripts["dispatch"]
            script.sha = self.client.script_load(script.script)
            self._pipeline_enqueue(prepared)
        for message in prepared:
            self.emit_after("enqueue", message, None)

    def _pipeline_enqueue(self, messages: Sequence[Message[Any]]) -> None:
        # What RedisBroker.do_enqueue runs per message (its dispatch script's arguments).
        pipe = self.client.pipeline(transaction=False)
        sha = self.scripts["dispatch"].sha
        for message in messages:
            pipe.evalsha(
                sha,
                1,
                self.namespace,
                "enqueue",
                current_millis(),
                message.queue_name,
                self.broker_id,
                self.heartbeat_timeout,
                self.dead_message_ttl,
                self._should_do_maintenance("enqueue"),
                self._max_unpack_size(),  # type: ignore[no-untyped-call]
                message.options["redis_message_id"],
                message.encode(),
            )
            key = wake_key(message.queue_name)
            pipe.lpush(key, 1)
            pipe.ltrim(key, 0, WAKE_TOKENS_MAX - 1)
        pipe.execute()


class _WakefulConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer with the idle sleep replaced by a wait on wake tokens."""

    def __next__(self) -> MessageProxy | None:
        try:
            while True:
                if self.message_cache:
                    data = self.message_cache.pop(0)
                    if data is None:
                        continue
                    self.misses = 0
                    message = Message.decode(data)
                    self.queued_message_ids.add(message.message_id)
                    return MessageProxy(message)
                messages: list[bytes] = []
                if self.outstanding_message_count < self.prefetch:
                    self.message_cache = messages = self.broker.do_fetch(
                        self.queue_name, self.prefetch - self.outstanding_message_count
                    )
                if not messages:
                    self.misses, backoff_ms = compute_backoff(self.misses, max_backoff=self.timeout)
                    self._wait(backoff_ms / 1000)
                    return None
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]

    def _wait(self, seconds: float) -> None:
        if self.outstanding_message_count >= self.prefetch:
            # Full: a new message could not be taken anyway, so just pause.
            time.sleep(seconds)
            return
        if self.broker.client.blpop([wake_key(self.queue_name)], timeout=max(seconds, MIN_BLOCK_S)):
            self.misses = 0
