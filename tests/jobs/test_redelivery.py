"""A dead worker's messages go back to their queue on the scheduler's next pass."""

from __future__ import annotations

import time
from dataclasses import replace

import dramatiq

from actors.redelivery import redeliver_dead_workers_messages
from actors.transport import build_broker

HEARTBEAT_TIMEOUT_MS = 300


def test_a_message_taken_by_a_worker_that_stopped_beating_is_handed_back(settings, redis_conn):
    # Given brokers that never run maintenance on their own
    quiet = replace(
        settings, broker_heartbeat_timeout_ms=HEARTBEAT_TIMEOUT_MS, broker_maintenance_chance=0
    )
    sender, dead_worker, scheduler = (build_broker(quiet) for _ in range(3))
    for broker in (sender, dead_worker, scheduler):
        broker.declare_queue("verification")
    message = dramatiq.Message(
        queue_name="verification",
        actor_name="verify_proof",
        args=("proof-1",),
        kwargs={},
        options={},
    )
    sender.enqueue(message)
    # And a worker that took the message, then died (no ack, no more heartbeats)
    consumer = dead_worker.consume("verification", prefetch=1, timeout=100)
    taken = next(consumer)
    assert taken is not None and taken.message_id == message.message_id
    assert redis_conn.llen("dramatiq:verification") == 0

    # When the scheduler's pass runs while the worker's heartbeat is still fresh
    redeliver_dead_workers_messages(scheduler, ["verification"])
    # Then nothing moves: a live worker keeps its messages
    assert redis_conn.llen("dramatiq:verification") == 0

    # When the heartbeat is older than the timeout and the pass runs again
    time.sleep(HEARTBEAT_TIMEOUT_MS / 1000 * 2)
    redeliver_dead_workers_messages(scheduler, ["verification"])
    # Then the message is back in its queue, under the same id
    assert redis_conn.llen("dramatiq:verification") == 1
    again = next(sender.consume("verification", prefetch=1, timeout=100))
    assert again is not None and again.message_id == message.message_id
