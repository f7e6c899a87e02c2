"""The job-record writes of the worker hooks, run on the driver (actors/job_records.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from actors.job_record_writes import Attempt, AttemptStart
from actors.job_records import JobRecords
from service.db import SessionFactory, create_db_engine
from service.domain.clock import utcnow
from service.models import Job, JobState
from tests.support.databases import RIFT_ID, queued_job


@pytest.fixture
def records(database_url: str) -> Iterator[JobRecords]:
    engine = create_db_engine(database_url, single_statements=True, poolclass=NullPool)
    records = JobRecords(engine)
    yield records
    records.close()
    records.engine.dispose()


def utc(moment: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without their zone (they are stored in UTC).
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


def read(sessions: SessionFactory, job_id: str) -> Job:
    with sessions() as session:
        return session.get_one(Job, job_id)


def test_an_attempt_runs_then_succeeds_with_its_result_stored(
    records: JobRecords, sessions: SessionFactory
) -> None:
    job_id = queued_job(sessions)
    started_at = utcnow()

    assert records.start_attempt(job_id, started_at) == Attempt(AttemptStart.STARTED, RIFT_ID, 1)
    running = read(sessions, job_id)
    assert (running.state, running.attempts) == (JobState.RUNNING, 1)
    assert utc(running.started_at) == utc(running.dispatched_at) == started_at

    result = {"passed": True, "assets": [{"score": 0.5, "issues": ["é ✓"]}]}
    assert records.record_outcome(job_id, JobState.SUCCEEDED, utcnow(), result=result)
    done = read(sessions, job_id)
    assert (done.state, done.progress, done.result) == (JobState.SUCCEEDED, 100, result)
    finished_at = utc(done.finished_at)
    assert finished_at is not None and finished_at >= started_at


def test_a_retried_attempt_keeps_its_error_and_counts_again(
    records: JobRecords, sessions: SessionFactory
) -> None:
    job_id = queued_job(sessions)
    records.start_attempt(job_id, utcnow())
    assert records.record_outcome(job_id, JobState.RETRYING, utcnow(), error="clamd down")
    records.start_attempt(job_id, utcnow())
    # A retry with no new error text keeps the last one (an operator reads it).
    assert records.record_outcome(job_id, JobState.RETRYING, utcnow(), error=None)
    job = read(sessions, job_id)
    assert (job.state, job.attempts, job.last_error, job.finished_at) == (
        JobState.RETRYING,
        2,
        "clamd down",
        None,
    )
    assert records.record_outcome(job_id, JobState.DEAD, utcnow(), error="x" * 5000)
    dead = read(sessions, job_id)
    assert dead.state is JobState.DEAD and dead.finished_at is not None
    assert dead.last_error == "x" * 2000


def test_a_finished_job_is_not_started_again_and_unknown_ids_are_told_apart(
    records: JobRecords, sessions: SessionFactory
) -> None:
    job_id = queued_job(sessions)
    records.start_attempt(job_id, utcnow())
    records.record_outcome(job_id, JobState.SUCCEEDED, utcnow())

    assert records.start_attempt(job_id, utcnow()) == Attempt(AttemptStart.ALREADY_FINISHED)
    assert read(sessions, job_id).attempts == 1
    assert records.start_attempt("no-such-job", utcnow()) == Attempt(AttemptStart.UNKNOWN_JOB)
    assert records.record_outcome("no-such-job", JobState.FAILED, utcnow(), error="e") is False


@pytest.mark.parametrize("late", [JobState.SUCCEEDED, JobState.DEAD, JobState.RETRYING])
def test_a_late_outcome_is_written_only_while_the_record_is_at_its_attempt(
    records: JobRecords, sessions: SessionFactory, late: JobState
) -> None:
    # Given an attempt whose outcome could not be written when it ended
    job_id = queued_job(sessions)
    first = records.start_attempt(job_id, utcnow()).number
    ended_at = utcnow() - timedelta(seconds=3)

    # When a second attempt starts before that outcome arrives (the reconciler resent it)
    assert records.start_attempt(job_id, utcnow()).number == 2

    # Then the first attempt's outcome changes nothing: the second writes its own
    assert not records.record_outcome(job_id, late, ended_at, error="late", attempt=first)
    job = read(sessions, job_id)
    assert (job.state, job.attempts, job.last_error) == (JobState.RUNNING, 2, None)

    # And an outcome of the attempt the record is at is written, with its own time
    assert records.record_outcome(job_id, late, ended_at, error="on time", attempt=2)
    job = read(sessions, job_id)
    assert (job.state, job.attempts, utc(job.updated_at)) == (late, 2, ended_at)


def test_worker_threads_write_concurrently_each_on_its_own_connection(
    records: JobRecords, sessions: SessionFactory
) -> None:
    job_ids = [queued_job(sessions) for _ in range(40)]
    errors: list[BaseException] = []

    def work(share: list[str]) -> None:
        try:
            for job_id in share:
                assert records.start_attempt(job_id, utcnow())[0] is AttemptStart.STARTED
                assert records.record_outcome(job_id, JobState.SUCCEEDED, utcnow())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(job_ids[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sessions() as session:
        states = session.execute(
            sa.select(Job.state, sa.func.count()).where(Job.id.in_(job_ids)).group_by(Job.state)
        ).all()
    assert states == [(JobState.SUCCEEDED, 40)]


def drop_connection(records: JobRecords, engine: sa.Engine) -> None:
    """Kill the calling thread's held connection the way a database restart would."""
    held = records._connection()
    if engine.dialect.name == "postgresql":
        backend_pid = held.driver_connection.info.backend_pid  # type: ignore[union-attr]
        with engine.connect() as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid})
    else:
        held.driver_connection.close()  # type: ignore[union-attr]


def test_an_outcome_survives_a_dropped_connection(
    records: JobRecords, sessions: SessionFactory, engine: sa.Engine
) -> None:
    job_id = queued_job(sessions)
    records.start_attempt(job_id, utcnow())
    drop_connection(records, engine)
    # Dramatiq only logs an after-hook's error, so this write must not fail: it is
    # retried once on a fresh connection.
    assert records.record_outcome(job_id, JobState.SUCCEEDED, utcnow())
    assert read(sessions, job_id).state is JobState.SUCCEEDED


def test_a_start_on_a_dropped_connection_fails_once_then_reconnects(
    records: JobRecords, sessions: SessionFactory, engine: sa.Engine
) -> None:
    job_id = queued_job(sessions)
    drop_connection(records, engine)
    # Not retried (it counts the attempt): the hook fails and Dramatiq retries the message.
    with pytest.raises(Exception):  # noqa: B017 - the driver's own error for a dead connection
        records.start_attempt(job_id, utcnow())
    assert records.start_attempt(job_id, utcnow())[0] is AttemptStart.STARTED
    assert read(sessions, job_id).attempts == 1


def test_one_disconnect_retires_every_threads_connection(
    records: JobRecords, sessions: SessionFactory, engine: sa.Engine
) -> None:
    """After a restart each worker thread would otherwise fail one write of its own."""
    job_id = queued_job(sessions)
    other_ready, killed, other_done = threading.Event(), threading.Event(), threading.Event()
    other_result: list[object] = []

    def other_thread() -> None:
        try:
            records.start_attempt(queued_job(sessions), utcnow())
            other_ready.set()
            killed.wait(10)
            # Its held connection died too; it must not be used for this write.
            other_result.append(records.start_attempt(job_id, utcnow()))
        except BaseException as error:
            other_result.append(error)
        finally:
            records.close_thread_connection()
            other_done.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    assert other_ready.wait(10)
    held_by_other = next(iter(records._held - {records._connection()}))
    drop_connection(records, engine)
    if engine.dialect.name == "postgresql":
        pid = held_by_other.driver_connection.info.backend_pid  # type: ignore[union-attr]
        with engine.connect() as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    else:
        held_by_other.driver_connection.close()  # type: ignore[union-attr]
    with pytest.raises(Exception):  # noqa: B017 - this thread sees the disconnect first
        records.start_attempt(queued_job(sessions), utcnow())
    killed.set()
    assert other_done.wait(10)
    thread.join()
    assert other_result == [Attempt(AttemptStart.STARTED, RIFT_ID, 1)]


def test_a_stopping_worker_thread_closes_its_connection(records: JobRecords) -> None:
    records.start_attempt("no-such-job", utcnow())
    assert len(records._held) == 1
    records.close_thread_connection()
    assert records._held == set()
    # A later write from the same thread opens a new one.
    assert records.start_attempt("no-such-job", utcnow()) == Attempt(AttemptStart.UNKNOWN_JOB)
    records.close()
    assert records._held == set()
    assert records.start_attempt("no-such-job", utcnow()) == Attempt(AttemptStart.UNKNOWN_JOB)


def test_a_duplicate_deliverys_outcome_never_turns_a_succeeded_job_back(
    records: JobRecords, sessions: SessionFactory
) -> None:
    # Given a job that succeeded
    job_id = queued_job(sessions)
    records.start_attempt(job_id, utcnow())
    assert records.record_outcome(job_id, JobState.SUCCEEDED, utcnow(), result={"ok": True})

    # When a duplicate delivery of it fails (retried, then dead)
    retrying = records.record_outcome(job_id, JobState.RETRYING, utcnow(), error="boom")
    dead = records.record_outcome(job_id, JobState.DEAD, utcnow(), error="boom")

    # Then neither write lands: the record still says SUCCEEDED with its result
    assert (retrying, dead) == (False, False)
    job = read(sessions, job_id)
    assert job.state is JobState.SUCCEEDED
    assert job.result == {"ok": True}
    assert job.last_error is None
