"""A message whose RUNNING write fails never runs without a record of it.

A database that cannot answer (down, restarting) makes the job wait for it without
spending a retry; a write that can never work (a bug, a missing table) spends the retries
like any error and dead-letters the message. The real outage, with real pools and a
PostgreSQL stopped under waiting messages, is in tests/chaos/test_dependency_outages.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware, Retries
from sqlalchemy.pool import NullPool

from actors.job_records import JobRecords
from actors.tracking import DATABASE_WAITS_OPTION, JobTracking
from service.db import create_db_engine, create_session_factory
from service.domain.clock import utcnow
from tests.support.processes import free_port

RETRIES = 2
MIN_BACKOFF_MS, MAX_BACKOFF_MS = 10, 20
# Long enough for many times the retry schedule's deliveries (3 in 30 ms).
WAITING_S = 0.6
DEAD_LETTER_WITHIN_S = 10.0


class Deliveries(Middleware):
    """Each delivery's retry count and database waits, as the message arrived."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        options = message.options
        self.seen.append((options.get("retries", 0), options.get(DATABASE_WAITS_OPTION, 0)))


def tracked_broker(url: str, redis_conn: redis.Redis) -> tuple[RedisBroker, list[str], Deliveries]:
    """A real Redis broker with JobTracking and Retries, as actors/broker.py orders them."""
    records = JobRecords(create_db_engine(url, single_statements=True, poolclass=NullPool))
    sessions = create_session_factory(create_db_engine(url))
    deliveries = Deliveries()
    broker = RedisBroker(
        client=redis_conn, middleware=[deliveries, JobTracking(records, sessions, utcnow)]
    )
    # JobTracking sits before Retries, as in actors/broker.py.
    broker.add_middleware(
        Retries(max_retries=RETRIES, min_backoff=MIN_BACKOFF_MS, max_backoff=MAX_BACKOFF_MS)
    )
    ran: list[str] = []

    @dramatiq.actor(
        broker=broker,
        queue_name="verification",
        min_backoff=MIN_BACKOFF_MS,
        max_backoff=MAX_BACKOFF_MS,
    )
    def verify_proof(proof_id: str) -> None:
        ran.append(proof_id)

    verify_proof.send("proof-1")
    return broker, ran, deliveries


@pytest.fixture
def running() -> Iterator[list[dramatiq.Worker]]:
    workers: list[dramatiq.Worker] = []
    yield workers
    for worker in workers:
        worker.stop()


def dead_letters(redis_conn: redis.Redis) -> list[dramatiq.Message[Any]]:
    stored = redis_conn.hgetall("dramatiq:verification.XQ.msgs")
    return [dramatiq.Message.decode(data) for data in stored.values()]


def test_a_job_that_finds_the_database_down_waits_without_spending_retries(
    running, redis_conn: redis.Redis
):
    # Given job records on a database that refuses every connection (down, restarting)
    broker, ran, deliveries = tracked_broker(
        f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/rift", redis_conn
    )

    # When its message is delivered for many times the retry schedule
    worker = dramatiq.Worker(broker, worker_timeout=10)
    running.append(worker)
    worker.start()
    time.sleep(WAITING_S)
    worker.pause()

    # Then the actor never ran and nothing was dead-lettered: the message came back more
    # times than its retries allow, each time with its retries untouched
    assert ran == []
    assert dead_letters(redis_conn) == []
    assert len(deliveries.seen) > RETRIES + 2, deliveries.seen
    assert deliveries.seen == [(0, n) for n in range(len(deliveries.seen))]


def test_a_job_whose_record_can_never_be_written_spends_its_retries(
    tmp_path: Path, running, redis_conn: redis.Redis
):
    # Given job records on a database without the jobs table: no wait would help
    broker, ran, deliveries = tracked_broker(f"sqlite:///{tmp_path / 'empty.sqlite3'}", redis_conn)

    # When its message is delivered, and delivered again by each retry
    worker = dramatiq.Worker(broker, worker_timeout=50)
    running.append(worker)
    worker.start()
    deadline = time.monotonic() + DEAD_LETTER_WITHIN_S
    while not dead_letters(redis_conn) and time.monotonic() < deadline:
        time.sleep(0.02)

    # Then the actor never ran, and the message was retried, then dead-lettered
    assert ran == []
    # (Redis keeps a dead letter as it was last enqueued: retried RETRIES times)
    assert deliveries.seen == [(n, 0) for n in range(RETRIES + 1)]
    (dead,) = dead_letters(redis_conn)
    assert dead.options["retries"] == RETRIES
