"""Commit, then dispatch: the one way a use case's transaction hands its jobs to the broker."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy.orm import Session

from service.db import SessionFactory, transaction
from service.domain.clock import Clock, IdFactory
from service.domain.jobs import JobDispatcher, dispatch_jobs
from service.models import Job

T = TypeVar("T")

#: A use case's transactional step: given the session and the moment it runs at, return
#: its result and the jobs it added to the transaction.
Operation = Callable[[Session, datetime], tuple[T, Sequence[Job]]]


@dataclass(frozen=True)
class UnitOfWork:
    """Runs use cases in one transaction each; jobs go to the broker only after the commit.

    Dispatching inside the transaction could hand a worker a job whose rows it cannot see
    yet (or that a rollback then removes); after the commit, a broker outage only leaves
    the jobs in the outbox for the relay.
    """

    sessions: SessionFactory
    dispatcher: JobDispatcher
    clock: Clock
    ids: IdFactory

    def run(self, operation: Operation[T]) -> T:
        """Run operation in a transaction, commit it, then dispatch the jobs it created."""
        with transaction(self.sessions) as session:
            result, jobs = operation(session, self.clock())
        dispatch_jobs(self.sessions, self.dispatcher, jobs, self.clock)
        return result

    def read(self) -> AbstractContextManager[Session]:
        """Open a session for reads; nothing it does is committed."""
        return self.sessions()
