"""Commit, then dispatch: a job reaches the broker only once its transaction has committed."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from sqlalchemy import select

from service.db import SessionFactory
from service.domain.clock import new_id, utcnow
from service.domain.jobs import new_job
from service.domain.queues import CLEAN_UP_RIFT
from service.domain.work import UnitOfWork
from service.models import Job


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
