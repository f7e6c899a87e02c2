"""A job that ends while the database is down has its outcome written once the database is back.

The job ran; only its record is behind. Without this, the record says RUNNING (and a final
failure goes uncompensated) until the reconciler's limit for running jobs, minutes away.
A real PostgreSQL behind a proxy that breaks every connection and refuses new ones, as a
server that stops does; a real Redis broker and worker; the outcome waits in the broker.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import AgeLimit, Middleware, Retries
from sqlalchemy.pool import NullPool

from actors.job_records import JobRecords
from actors.tracking import PENDING_OUTCOME_OPTION, JobTracking
from service.db import SessionFactory, create_db_engine, create_session_factory
from service.domain.clock import as_utc, utcnow
from service.domain.jobs import PermanentJobError
from service.domain.queues import VERIFY_PROOF
from service.models import FINAL_JOB_STATES, Job, JobState
from tests.support.databases import queued_job
from tests.support.pg_proxy import PostgresProxy

pytestmark = pytest.mark.postgresql_only

MIN_BACKOFF_MS, MAX_BACKOFF_MS = 20, 100
# Long enough for several tries of the waiting outcome (20, 40, 80, 100 ms apart).
DOWN_S = 0.8
SETTLED_WITHIN_S = 10.0


class LateCopies(Middleware):
    """The deliveries that carried only an outcome, as each arrived."""

    def __init__(self) -> None:
        self.waits: list[int] = []

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        pending = message.options.get(PENDING_OUTCOME_OPTION)
        if pending is not None:
            self.waits.append(pending["waits"])


class RefusingCopiesBroker(RedisBroker):
    """A broker that cannot take the copy carrying an outcome (Redis full, or away too)."""

    def enqueue(self, message: Any, *, delay: int | None = None) -> Any:
        if PENDING_OUTCOME_OPTION in message.options:
            raise redis.ConnectionError("the broker is away too")
        return super().enqueue(message, delay=delay)


class System:
    def __init__(
        self,
        database_url: str,
        proxy: PostgresProxy,
        redis_conn: redis.Redis,
        *,
        broker_refuses_copies: bool = False,
    ) -> None:
        through_proxy = proxy.url(database_url)
        self.records = records = JobRecords(
            create_db_engine(through_proxy, single_statements=True, poolclass=NullPool)
        )
        self.engine = create_db_engine(through_proxy)
        self.final_failures: list[Job] = []
        self.late = LateCopies()
        self.broker = (RefusingCopiesBroker if broker_refuses_copies else RedisBroker)(
            client=redis_conn,
            middleware=[
                # First, as in actors/transport.py: it skips an expired message before
                # JobTracking starts it.
                AgeLimit(),
                self.late,
                JobTracking(
                    records,
                    create_session_factory(self.engine),
                    utcnow,
                    on_final_failure=lambda message, job, error: self.final_failures.append(job),
                ),
            ],
        )
        # JobTracking sits before Retries, as in actors/broker.py.
        self.broker.add_middleware(Retries(max_retries=3))
        self.ended: list[datetime] = []

        @dramatiq.actor(
            broker=self.broker,
            queue_name="verification",
            min_backoff=MIN_BACKOFF_MS,
            max_backoff=MAX_BACKOFF_MS,
            throws=(PermanentJobError,),
        )
        def verify_proof(fails: bool) -> dict[str, Any]:
            # The database goes away while the job runs: its outcome cannot be written.
            proxy.go_down(DOWN_S)
            self.ended.append(utcnow())
            if fails:
                raise PermanentJobError("the proof's rift is gone")
            return {"passed": True}

        self.actor = verify_proof
        self.worker = dramatiq.Worker(self.broker, worker_timeout=10)

    def send(self, sessions: SessionFactory, *, fails: bool, **options: Any) -> str:
        message = self.actor.message_with_options(args=(fails,), **options)
        queued_job(sessions, message.message_id, VERIFY_PROOF)
        self.broker.enqueue(message)
        return message.message_id


@contextmanager
def running(system: System) -> Iterator[System]:
    system.worker.start()
    try:
        yield system
    finally:
        system.worker.stop()
        system.records.close()
        system.records.engine.dispose()
        system.engine.dispose()


@pytest.fixture
def system(database_url: str, proxy: PostgresProxy, redis_conn: redis.Redis) -> Iterator[System]:
    with running(System(database_url, proxy, redis_conn)) as system:
        yield system


@pytest.fixture
def system_refusing_copies(
    database_url: str, proxy: PostgresProxy, redis_conn: redis.Redis
) -> Iterator[System]:
    with running(System(database_url, proxy, redis_conn, broker_refuses_copies=True)) as system:
        yield system


def job_record(sessions: SessionFactory, job_id: str) -> Job:
    with sessions() as session:
        return session.get_one(Job, job_id)


def settled(sessions: SessionFactory, job_id: str) -> Job:
    deadline = time.monotonic() + SETTLED_WITHIN_S
    while True:
        job = job_record(sessions, job_id)
        if job.state in FINAL_JOB_STATES or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_a_job_that_succeeds_while_the_database_is_down_is_recorded_once_it_is_back(
    system: System, sessions: SessionFactory
):
    # Given a job whose database goes down while it runs
    job_id = system.send(sessions, fails=False)

    # When the database comes back, DOWN_S later
    job = settled(sessions, job_id)

    # Then its record says what happened, at the moment it happened, on its one attempt
    assert (job.state, job.attempts, job.result) == (JobState.SUCCEEDED, 1, {"passed": True})
    (ended,) = system.ended
    # (when it ended, not when the database came back, DOWN_S after it went down)
    assert job.finished_at is not None
    finished_at = as_utc(job.finished_at)
    assert ended <= finished_at < ended + timedelta(seconds=DOWN_S / 2), (ended, finished_at)
    # And the outcome waited for it in the broker, trying more than once meanwhile
    assert len(system.late.waits) > 2, system.late.waits
    assert system.late.waits == list(range(1, len(system.late.waits) + 1))
    assert system.final_failures == []


def test_a_job_that_fails_while_the_database_is_down_is_compensated_once_it_is_back(
    system: System, sessions: SessionFactory
):
    # Given a job that fails for good while the database is down
    job_id = system.send(sessions, fails=True)

    # When the database comes back
    job = settled(sessions, job_id)

    # Then it is FAILED with its error, and its final failure is handled, once
    assert (job.state, job.attempts) == (JobState.FAILED, 1)
    assert "PermanentJobError" in (job.last_error or ""), job.last_error
    # (the hook runs just after the write the record shows)
    deadline = time.monotonic() + SETTLED_WITHIN_S
    while not system.final_failures and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [failed.id for failed in system.final_failures] == [job_id]
    assert system.final_failures[0].state is JobState.FAILED


def test_an_outcome_neither_the_database_nor_the_broker_takes_is_logged_and_the_job_not_run_again(
    system_refusing_copies: System, sessions: SessionFactory, caplog: pytest.LogCaptureFixture
):
    system = system_refusing_copies
    # Given a job that ends while the database is down, and a broker that refuses the
    # copy that would carry its outcome
    job_id = system.send(sessions, fails=False)

    # When the database is back (and then some)
    time.sleep(DOWN_S * 2)

    # Then the record stays as the job's start left it, for the reconciler to find
    job = job_record(sessions, job_id)
    assert (job.state, job.attempts) == (JobState.RUNNING, 1)
    # And an operator is told, by an error naming the job
    (refused,) = [r for r in caplog.records if "could not keep the job's outcome" in r.message]
    assert refused.levelname == "ERROR" and refused.__dict__["job_id"] == job_id
    # And the job ran once: its outcome lost is not a reason to do its work again
    assert len(system.ended) == 1
    assert system.late.waits == []


def test_a_delivery_that_never_started_keeps_no_outcome_to_write_late(
    system: System, proxy: PostgresProxy, sessions: SessionFactory, caplog: pytest.LogCaptureFixture
):
    # Given a message that expires before a worker takes it, while the database is down
    proxy.go_down(DOWN_S)
    job_id = system.send(sessions, fails=False, max_age=1)

    # When the database is back (and then some)
    time.sleep(DOWN_S * 2)

    # Then no outcome waits for it: written late, unguarded (no attempt of it started), it
    # could end an attempt the reconciler's resend started meanwhile
    assert system.late.waits == []
    (dropped,) = [r for r in caplog.records if "delivery that never started" in r.message]
    assert dropped.__dict__["job_id"] == job_id
    # And the job never ran; its record waits for the reconciler, as before the outage
    assert system.ended == []
    assert job_record(sessions, job_id).state is JobState.QUEUED


def test_a_copy_whose_outcome_cannot_be_read_is_logged_and_never_runs_the_job(
    system: System, sessions: SessionFactory, caplog: pytest.LogCaptureFixture
):
    # Given a copy whose outcome this worker cannot read (another version wrote it)
    job_id = system.send(sessions, fails=False, **{PENDING_OUTCOME_OPTION: {"state": "??"}})

    # When a worker takes it
    deadline = time.monotonic() + SETTLED_WITHIN_S
    while not any("late outcome" in r.message for r in caplog.records):
        assert time.monotonic() < deadline, "the copy was never handled"
        time.sleep(0.05)

    # Then the error names the job, the job did not run, and its record is as it was
    (failed,) = [r for r in caplog.records if "could not write the job's late outcome" in r.message]
    assert failed.levelname == "ERROR" and failed.__dict__["job_id"] == job_id
    assert system.ended == []
    assert job_record(sessions, job_id).state is JobState.QUEUED
