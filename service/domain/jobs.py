"""Durable job records and the transactional outbox that hands them to the broker."""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Table, and_, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement

from service.db import SessionFactory, transaction
from service.domain.clock import Clock, IdFactory
from service.domain.errors import JobNotRetryable, NotFound
from service.domain.queues import JobKind
from service.models import FINAL_JOB_STATES, Job, JobState

log = logging.getLogger(__name__)

RELAY_BATCH_SIZE = 500
ERROR_TEXT_MAX_CHARS = 2_000


class PermanentJobError(Exception):
    """A job that can never succeed (its subject is gone or invalid): fail it, don't retry."""


class BrokerUnavailable(Exception):
    """The broker did not take the message; the job stays in the outbox."""


class JobDispatcher(Protocol):
    """Hands a job to the broker (implemented over Dramatiq in actors/dispatch.py)."""

    def dispatch_many(self, jobs: Sequence[Job]) -> None:
        """Send a batch; raising BrokerUnavailable means none of it counts as sent."""
        ...


def new_job(
    session: Session,
    kind: JobKind,
    *,
    subject_id: str,
    now: datetime,
    ids: IdFactory,
    rift_id: str | None = None,
    proof_id: str | None = None,
    requested_by: str | None = None,
) -> Job:
    """Add a PENDING, not-yet-dispatched job to the session's transaction."""
    job = Job(
        id=ids(),
        actor_name=kind.actor_name,
        queue_name=kind.queue_name,
        subject_id=subject_id,
        rift_id=rift_id,
        proof_id=proof_id,
        requested_by=requested_by,
        state=JobState.PENDING,
        attempts=0,
        progress=0,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    return job


def dispatch_jobs(
    sessions: SessionFactory, dispatcher: JobDispatcher, jobs: Sequence[Job], clock: Clock
) -> int:
    """Hand committed jobs to the broker; a job the broker refuses stays for the relay."""
    if not jobs:
        return 0
    try:
        dispatcher.dispatch_many(jobs)
    except BrokerUnavailable as exc:
        log.warning(
            "broker unavailable; jobs left in the outbox",
            extra={"job_ids": [job.id for job in jobs], "error": str(exc)},
        )
        return 0
    with transaction(sessions) as session:
        mark_dispatched(session, [job.id for job in jobs], clock())
    return len(jobs)


# mark_dispatched's one UPDATE, built once: building it costs more than running it. SET
# expressions read the row as it was before the UPDATE, so each column moves exactly when
# it would have moved as two UPDATEs (dispatched_at if unset; state and updated_at if PENDING).
_WAS_PENDING = Job.state == bindparam("pending", JobState.PENDING, type_=Job.state.type)
_NOW = bindparam("now", type_=Job.updated_at.type)
_MARK_DISPATCHED = (
    update(Job)
    .where(
        Job.id.in_(bindparam("job_ids", expanding=True)),
        or_(Job.dispatched_at.is_(None), _WAS_PENDING),
    )
    .values(
        dispatched_at=func.coalesce(Job.dispatched_at, _NOW),
        state=case(
            (_WAS_PENDING, bindparam("queued", JobState.QUEUED, type_=Job.state.type)),
            else_=Job.state,
        ),
        updated_at=case((_WAS_PENDING, _NOW), else_=Job.updated_at),
    )
)


def mark_dispatched(session: Session, job_ids: Sequence[str], now: datetime) -> None:
    """Record that the broker has the jobs; never move a job that a worker already moved."""
    # On the session's connection: a Core UPDATE, no ORM bulk-update bookkeeping (the
    # caller's session holds no jobs to synchronise).
    session.connection().execute(_MARK_DISPATCHED, {"job_ids": list(job_ids), "now": now})


def relay_outbox(
    sessions: SessionFactory, dispatcher: JobDispatcher, clock: Clock, grace: timedelta
) -> int:
    """Dispatch jobs left undispatched for longer than grace; return how many went out."""
    cutoff = clock() - grace
    total = 0
    while True:
        with sessions() as session:
            jobs = list(
                session.scalars(
                    select(Job)
                    .where(Job.dispatched_at.is_(None), Job.created_at <= cutoff)
                    .order_by(Job.created_at)
                    .limit(RELAY_BATCH_SIZE)
                )
            )
        if not jobs:
            return total
        sent = dispatch_jobs(sessions, dispatcher, jobs, clock)
        total += sent
        if sent < len(jobs):
            return total


def get_job(session: Session, job_id: str) -> Job:
    """Return the job record or raise NotFound."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


class AttemptStart(enum.Enum):
    STARTED = "started"
    ALREADY_FINISHED = "already_finished"
    UNKNOWN_JOB = "unknown_job"


# The two job-record writes every message pays (tracking hooks) are built once, on the
# Core table, and run by actors/job_records.py straight on the driver: building an
# ORM-enabled UPDATE per call, then SQLAlchemy's per-execution work, cost more worker CPU
# than Dramatiq's own handling of the message (bench measurement 1).
_JOBS: Table = Job.__table__  # type: ignore[assignment]  # declared as FromClause
_JOB_ID = bindparam("job_id", type_=_JOBS.c.id.type)
# `!=` per state rather than NOT IN: an IN list is rendered per execution ("expanding"),
# these are compiled once with the statement.
_UNFINISHED_STATE = and_(*(_JOBS.c.state != state for state in sorted(FINAL_JOB_STATES)))
START_ATTEMPT = (
    update(_JOBS)
    .where(_JOBS.c.id == _JOB_ID, _UNFINISHED_STATE)
    .values(
        state=JobState.RUNNING,
        attempts=_JOBS.c.attempts + 1,
        started_at=func.coalesce(_JOBS.c.started_at, _NOW),
        dispatched_at=func.coalesce(_JOBS.c.dispatched_at, _NOW),
        updated_at=_NOW,
    )
    .returning(_JOBS.c.rift_id)
)
JOB_EXISTS = select(_JOBS.c.id).where(_JOBS.c.id == _JOB_ID)
_OUTCOME = update(_JOBS).where(_JOBS.c.id == _JOB_ID)
SUCCEEDED = _OUTCOME.values(
    state=JobState.SUCCEEDED,
    result=bindparam("result", type_=_JOBS.c.result.type),
    progress=100,
    updated_at=_NOW,
    finished_at=_NOW,
)
# An outcome without error text keeps the last one (an operator reads it).
_ERROR_OR_LAST = func.coalesce(
    bindparam("error", type_=_JOBS.c.last_error.type), _JOBS.c.last_error
)
FINISHED_WITH_ERROR = _OUTCOME.values(
    state=bindparam("state", type_=_JOBS.c.state.type),
    last_error=_ERROR_OR_LAST,
    updated_at=_NOW,
    finished_at=_NOW,
)
UNFINISHED = _OUTCOME.values(
    state=bindparam("state", type_=_JOBS.c.state.type), last_error=_ERROR_OR_LAST, updated_at=_NOW
)
JOB_RECORD_STATEMENTS = (START_ATTEMPT, JOB_EXISTS, SUCCEEDED, FINISHED_WITH_ERROR, UNFINISHED)


class RunStatement(Protocol):
    """Runs one of JOB_RECORD_STATEMENTS: returns its row count and first row, if any."""

    def __call__(
        self, statement: ClauseElement, params: dict[str, Any]
    ) -> tuple[int, Sequence[Any] | None]: ...


def record_running(
    run: RunStatement, job_id: str, now: datetime
) -> tuple[AttemptStart, str | None]:
    """Mark a job RUNNING and count the attempt, unless it already finished.

    One UPDATE on the hot path (a worker pays it per message); only a redelivered or
    unknown message costs a second query to tell which it was. Returns the job's rift id.
    """
    _, started = run(START_ATTEMPT, {"job_id": job_id, "now": now})
    if started is not None:
        return AttemptStart.STARTED, started[0]
    _, known = run(JOB_EXISTS, {"job_id": job_id})
    return (AttemptStart.ALREADY_FINISHED if known else AttemptStart.UNKNOWN_JOB), None


def record_outcome(
    run: RunStatement,
    job_id: str,
    state: JobState,
    now: datetime,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
) -> bool:
    """Store the outcome of one attempt in one UPDATE; False when no such job exists."""
    params: dict[str, Any] = {"job_id": job_id, "now": now}
    if error is not None:
        error = error[:ERROR_TEXT_MAX_CHARS]
    if state is JobState.SUCCEEDED:
        statement, params["result"] = SUCCEEDED, result
    elif state in FINAL_JOB_STATES:
        statement, params["state"], params["error"] = FINISHED_WITH_ERROR, state, error
    else:
        statement, params["state"], params["error"] = UNFINISHED, state, error
    count, _ = run(statement, params)
    return bool(count)


def retry_job(session: Session, job_id: str, now: datetime) -> Job:
    """Put a FAILED or DEAD job back in the outbox for another run (operator action)."""
    job = get_job(session, job_id)
    if job.state not in (JobState.FAILED, JobState.DEAD):
        raise JobNotRetryable(
            f"job {job_id} is {job.state.value}; only FAILED or DEAD jobs can be retried"
        )
    job.state = JobState.PENDING
    job.dispatched_at = None
    job.finished_at = None
    job.updated_at = now
    return job


def count_jobs_by_state(session: Session) -> dict[tuple[str, str], int]:
    """Count job records per (state, actor)."""
    rows = session.execute(
        select(Job.state, Job.actor_name, func.count()).group_by(Job.state, Job.actor_name)
    )
    return {(state.value, actor): count for state, actor, count in rows}
