"""What callers and operators may read of job records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.domain.errors import NotFound
from service.domain.queues import ACTOR_NAMES
from service.domain.users import User
from service.models import FINAL_JOB_STATES, Job, JobState, Rift


def readable_job(session: Session, job_id: str, user: User) -> Job:
    """Return the job if the user asked for it, is a party to its rift, or is an admin."""
    job = session.get(Job, job_id)
    # Someone else's job answers exactly like a job that does not exist.
    if job is None or not _may_read(session, user, job):
        raise NotFound(f"no job {job_id}")
    return job


def _may_read(session: Session, user: User, job: Job) -> bool:
    if user.is_admin or job.requested_by == user.id:
        return True
    rift = session.get(Rift, job.rift_id) if job.rift_id else None
    return rift is not None and user.relation_to(rift) is not None


def jobs_in_states(session: Session, states: Sequence[JobState], limit: int) -> list[Job]:
    """Return the most recently updated jobs in any of states (operators' failure list)."""
    return list(
        session.scalars(
            select(Job).where(Job.state.in_(states)).order_by(Job.updated_at.desc()).limit(limit)
        )
    )


#: The states a job passes through before it finishes: few rows however long the history.
IN_FLIGHT_STATES = tuple(state for state in JobState if state not in FINAL_JOB_STATES)


def count_jobs_in_flight(session: Session) -> dict[tuple[str, str], int]:
    """Count unfinished jobs per (state, actor), zero for every kind with none.

    Finished records are left out on purpose: they grow with history (a count of them
    reads the whole table on every scrape), and their rates are counters already.
    """
    counts = dict.fromkeys(
        ((state.value, actor) for state in IN_FLIGHT_STATES for actor in ACTOR_NAMES), 0
    )
    rows = session.execute(
        select(Job.state, Job.actor_name, func.count())
        .where(Job.state.in_(IN_FLIGHT_STATES))
        .group_by(Job.state, Job.actor_name)
    )
    counts.update({(state.value, actor): count for state, actor, count in rows})
    return counts


@dataclass(frozen=True)
class QueueBacklog:
    """What the job records say is waiting on one queue."""

    #: Jobs whose last attempt failed and whose retry waits for its back-off.
    retrying: int
    #: When the longest-waiting QUEUED job was handed to the broker (None: none waits).
    oldest_queued_at: datetime | None


def backlog_by_queue(session: Session) -> dict[str, QueueBacklog]:
    """Per queue: retries waiting, and the oldest dispatched job no worker has started."""
    rows = session.execute(
        select(
            Job.queue_name,
            func.count().filter(Job.state == JobState.RETRYING),
            func.min(Job.dispatched_at).filter(Job.state == JobState.QUEUED),
        )
        .where(Job.state.in_((JobState.RETRYING, JobState.QUEUED)))
        .group_by(Job.queue_name)
    )
    return {
        queue: QueueBacklog(retrying=int(retrying), oldest_queued_at=oldest)
        for queue, retrying, oldest in rows
    }
