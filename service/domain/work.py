"""Commit, then dispatch: the one way a use case's transaction hands its jobs to the broker."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from service.db import SessionFactory, autocommit_reads, transaction
from service.domain.clock import Clock, IdFactory
from service.domain.jobs import (
    DISPATCH_AFTER_COMMIT,
    BrokerUnavailable,
    JobDispatcher,
    JobMessage,
    NewJob,
    release_dispatch_claims,
)
from service.models import Job, JobState

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What a use case asks to run: job records it loaded and changed (a retry), or new ones
#: for the unit of work to write.
WorkJob = Job | NewJob

#: A use case's transactional step: given the session and the moment it runs at, return
#: its result and the jobs it added to the transaction.
Operation = Callable[[Session, datetime], tuple[T, Sequence[WorkJob]]]


@dataclass(frozen=True)
class UnitOfWork:
    """Runs use cases in one transaction each; jobs go to the broker only after the commit.

    Dispatching inside the transaction could hand a worker a job whose rows it cannot see
    yet (or that a rollback then removes). So the transaction writes its jobs already
    claimed for dispatch (QUEUED, dispatched_at set), the commit makes them visible, and
    then they are sent: the request path needs no second transaction to record that.
    If the broker refuses them, the claim is released (back to PENDING, for the relay);
    if this process dies between the commit and the send, or the release fails too, the
    reconciler sends a QUEUED job nobody started (RECONCILE_QUEUED_AFTER_S). A job is
    never lost, and a job sent twice is decided once.
    """

    sessions: SessionFactory
    dispatcher: JobDispatcher
    clock: Clock
    ids: IdFactory

    def run(self, operation: Operation[T]) -> T:
        """Run operation in a transaction, commit it, then dispatch the jobs it created.

        The commit is settled (`transaction(settle_commit=True)`): an answer that says
        "nothing was saved" is true, so a client that sends the request again does not
        store it twice.
        """
        with transaction(self.sessions, settle_commit=True) as session:
            now = self.clock()
            session.info[DISPATCH_AFTER_COMMIT] = now
            result, jobs = operation(session, now)
            claimed = _claim(jobs, now)
        self._send(claimed, now)
        return result

    def read(self) -> AbstractContextManager[Session]:
        """Open a session for reads; nothing it does is committed."""
        return self.sessions()

    def read_once(self) -> AbstractContextManager[Connection]:
        """A connection for one-statement reads, without a transaction's round trips."""
        return autocommit_reads(self.sessions)

    def _send(self, jobs: Sequence[JobMessage], claimed_at: datetime) -> None:
        if not jobs:
            return
        try:
            self.dispatcher.dispatch_many(jobs)
        except BrokerUnavailable as exc:
            ids = [job.id for job in jobs]
            log.warning(
                "broker unavailable; jobs left in the outbox",
                extra={"job_ids": ids, "error": str(exc)},
            )
            try:
                with transaction(self.sessions) as session:
                    release_dispatch_claims(session, ids, claimed_at, self.clock())
            except Exception:
                # The jobs stay QUEUED without a message: the reconciler's to send.
                log.exception("could not release dispatch claims", extra={"job_ids": ids})


def _claim(jobs: Sequence[WorkJob], now: datetime) -> list[JobMessage]:
    """Mark the operation's jobs claimed for the dispatch after the commit.

    New ones were written claimed already (`insert_jobs`); loaded ones (a retry) are
    marked here, and the commit writes them.
    """
    for job in jobs:
        if isinstance(job, NewJob):
            assert job.dispatched_at == now, "write new jobs with insert_jobs(session, ...)"
        else:
            job.state, job.dispatched_at, job.updated_at = JobState.QUEUED, now, now
    return list(jobs)
