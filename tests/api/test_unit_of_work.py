"""Commit, then dispatch: a job reaches the broker only once its transaction has committed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest
from sqlalchemy import select

from service.db import SessionFactory
from service.domain.clock import as_utc, new_id, utcnow
from service.domain.jobs import BrokerUnavailable, NewJob, insert_jobs, new_job, relay_outbox
from service.domain.queues import CLEAN_UP_RIFT
from service.domain.reconciler import ReconcileLimits, reconcile
from service.domain.work import UnitOfWork
from service.models import Job, JobState


class CommittedRowsDispatcher:
    """A JobDispatcher that records, per dispatched job, whether a fresh session sees it."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.sessions = sessions
        self.visible: dict[str, bool] = {}

    def dispatch_many(self, jobs: Sequence[Job]) -> None:
        with self.sessions() as session:
            for job in jobs:
                self.visible[job.id] = session.get(Job, job.id) is not None


def test_jobs_are_dispatched_after_their_transaction_commits(sessions: SessionFactory) -> None:
    dispatcher = CommittedRowsDispatcher(sessions)
    work = UnitOfWork(sessions, dispatcher, utcnow, new_id)

    job_id = work.run(
        lambda session, now: (
            (job := new_job(session, CLEAN_UP_RIFT, subject_id="r-1", now=now, ids=new_id)).id,
            [job],
        )
    )

    assert dispatcher.visible == {job_id: True}
    with work.read() as session:
        assert session.get(Job, job_id).dispatched_at is not None  # type: ignore[union-attr]


def test_a_failed_operation_commits_nothing_and_dispatches_nothing(
    sessions: SessionFactory,
) -> None:
    dispatcher = CommittedRowsDispatcher(sessions)
    work = UnitOfWork(sessions, dispatcher, utcnow, new_id)

    def refused(session, now):  # type: ignore[no-untyped-def]
        new_job(session, CLEAN_UP_RIFT, subject_id="r-1", now=now, ids=new_id)
        session.flush()
        raise ValueError("refused after writing")

    with pytest.raises(ValueError, match="refused"):
        work.run(refused)

    assert dispatcher.visible == {}
    with work.read() as session:
        assert session.scalars(select(Job)).all() == []


class DiesBeforeSending:
    """A dispatcher whose process dies (SIGKILL, OOM) after the commit, before the send."""

    def dispatch_many(self, jobs: Sequence[Job]) -> None:
        raise SystemExit("killed between the commit and the send")


class RefusesEverything:
    def dispatch_many(self, jobs: Sequence[Job]) -> None:
        raise BrokerUnavailable("connection refused")


def new_cleanup_job(session, now):  # type: ignore[no-untyped-def]
    [job] = insert_jobs(session, [NewJob.of(CLEAN_UP_RIFT, subject_id="r-1", now=now, ids=new_id)])
    return job.id, [job]


def test_jobs_are_claimed_in_their_own_transaction_and_a_refused_claim_goes_to_the_relay(
    sessions: SessionFactory,
) -> None:
    # Given a broker that refuses the send after the commit
    work = UnitOfWork(sessions, RefusesEverything(), utcnow, new_id)

    # When a use case's jobs are committed
    job_id = work.run(new_cleanup_job)

    # Then the claim is released: the job waits undispatched, for the relay to send once
    with work.read() as session:
        job = session.get_one(Job, job_id)
        assert (job.state, job.dispatched_at) == (JobState.PENDING, None)
    dispatcher = CommittedRowsDispatcher(sessions)
    assert relay_outbox(sessions, dispatcher, utcnow, timedelta(0)) == 1
    assert relay_outbox(sessions, dispatcher, utcnow, timedelta(0)) == 0
    assert dispatcher.visible == {job_id: True}


def test_a_process_that_dies_between_commit_and_send_leaves_a_job_the_reconciler_sends(
    sessions: SessionFactory,
) -> None:
    # Given a use case whose process dies after its commit, before the broker has the jobs
    work = UnitOfWork(sessions, DiesBeforeSending(), utcnow, new_id)
    with pytest.raises(SystemExit):
        work.run(new_cleanup_job)
    with work.read() as session:
        [job] = session.scalars(select(Job)).all()
    # Then the job is committed QUEUED (claimed), and the relay leaves it alone
    assert job.state is JobState.QUEUED and job.dispatched_at is not None
    dispatcher = CommittedRowsDispatcher(sessions)
    assert relay_outbox(sessions, dispatcher, utcnow, timedelta(0)) == 0

    # When it has waited past RECONCILE_QUEUED_AFTER_S with no message on the broker
    later = job.dispatched_at + timedelta(minutes=5)  # type: ignore[operator]
    done = reconcile(
        sessions,
        dispatcher,
        lambda: as_utc(later),
        ReconcileLimits(
            queued_after=timedelta(seconds=30),
            retry_margin=timedelta(seconds=30),
            running_margin=timedelta(seconds=30),
            max_retries=3,
            max_backoff=timedelta(seconds=1),
        ),
        on_final_failure=lambda job: None,
        backlog=lambda queue: 0,
    )

    # Then the reconciler sends it, under its own id
    assert done.redispatched == [job.id]
    assert dispatcher.visible == {job.id: True}
