"""The transactional outbox: job records written with their transaction, sent after it.

The worker's writes to a record (RUNNING, the outcome) are in actors/job_record_writes.py;
what operators and callers read of records is in service/domain/job_queries.py.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from service.db import SessionFactory, transaction
from service.domain.clock import Clock, IdFactory, as_utc
from service.domain.correlation import current_request_id
from service.domain.errors import JobNotRetryable, NotFound
from service.domain.queues import JobKind, OnFinalFailure, job_kind
from service.models import Asset, Job, JobState, ScanStatus

log = logging.getLogger(__name__)

RELAY_BATCH_SIZE = 500


class PermanentJobError(Exception):
    """A job that can never succeed (its subject is gone or invalid): fail it, don't retry."""


class BrokerUnavailable(Exception):
    """The broker did not take the message; the job stays in the outbox."""


class JobMessage(Protocol):
    """What a broker message is made of: a job record loaded, or one just inserted."""

    @property
    def id(self) -> str: ...

    @property
    def actor_name(self) -> str: ...

    @property
    def queue_name(self) -> str: ...

    @property
    def subject_id(self) -> str: ...

    @property
    def request_id(self) -> str | None: ...


class JobDispatcher(Protocol):
    """Hands a job to the broker (implemented over Dramatiq in actors/dispatch.py)."""

    def dispatch_many(self, jobs: Sequence[JobMessage]) -> None:
        """Send a batch; raising BrokerUnavailable means none of it counts as sent."""
        ...


@dataclass(frozen=True)
class NewJob:
    """A PENDING, not-yet-dispatched job record, as the row an INSERT writes."""

    id: str
    actor_name: str
    queue_name: str
    subject_id: str
    rift_id: str | None
    proof_id: str | None
    requested_by: str | None
    request_id: str | None
    created_at: datetime
    updated_at: datetime
    state: JobState = JobState.PENDING
    attempts: int = 0
    progress: int = 0
    dispatched_at: datetime | None = None

    @classmethod
    def of(
        cls,
        kind: JobKind,
        *,
        subject_id: str,
        now: datetime,
        ids: IdFactory,
        rift_id: str | None = None,
        proof_id: str | None = None,
        requested_by: str | None = None,
    ) -> NewJob:
        """The job keeps the id of the request being served, so its worker logs under it."""
        return cls(
            id=ids(),
            actor_name=kind.actor_name,
            queue_name=kind.queue_name,
            subject_id=subject_id,
            rift_id=rift_id,
            proof_id=proof_id,
            requested_by=requested_by,
            request_id=current_request_id(),
            created_at=now,
            updated_at=now,
        )

    def row(self) -> dict[str, Any]:
        # Shallow: dataclasses.asdict deep-copies every value, a third of a submission's
        # Python time spent on copying strings and datetimes.
        return dict(self.__dict__)


#: Set on a session by the unit of work that will send its jobs once it commits: the
#: moment they count as dispatched (service/domain/work.py).
DISPATCH_AFTER_COMMIT = "rift_dispatch_after_commit"
# Inline: the rows carry their keys, and no RETURNING (which a pipeline cannot read back).
_INSERT_JOBS = insert(Job).inline()


def insert_jobs(session: Session, jobs: Sequence[NewJob]) -> list[NewJob]:
    """Write new job records in one statement; return them as written.

    In a unit of work they are written claimed for its dispatch after the commit (QUEUED,
    dispatched_at set), so no second transaction has to record it; elsewhere PENDING,
    for whoever dispatches them (or the relay).
    """
    claimed_at: datetime | None = session.info.get(DISPATCH_AFTER_COMMIT)
    if claimed_at is not None:
        jobs = [replace(job, state=JobState.QUEUED, dispatched_at=claimed_at) for job in jobs]
    if jobs:
        session.connection().execute(_INSERT_JOBS, [job.row() for job in jobs])
    return list(jobs)


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
    """Add a PENDING, not-yet-dispatched job to the session's transaction (see NewJob)."""
    record = NewJob.of(
        kind,
        subject_id=subject_id,
        now=now,
        ids=ids,
        rift_id=rift_id,
        proof_id=proof_id,
        requested_by=requested_by,
    )
    job = Job(**record.row())
    session.add(job)
    return job


def dispatch_jobs(
    sessions: SessionFactory,
    dispatcher: JobDispatcher,
    jobs: Sequence[JobMessage],
    clock: Clock,
) -> int:
    """Hand committed jobs to the broker, then record it; a job refused stays for the relay.

    (Use cases claim their jobs in their own transaction instead: service/domain/work.py.)
    """
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


_RELEASE_CLAIMS = (
    update(Job)
    .where(
        Job.id.in_(bindparam("job_ids", expanding=True)),
        Job.state == bindparam("queued", JobState.QUEUED, type_=Job.state.type),
        Job.dispatched_at == bindparam("claimed_at", type_=Job.dispatched_at.type),
    )
    .values(
        state=bindparam("pending", JobState.PENDING, type_=Job.state.type),
        dispatched_at=None,
        updated_at=_NOW,
    )
)


def release_dispatch_claims(
    session: Session, job_ids: Sequence[str], claimed_at: datetime, now: datetime
) -> None:
    """Put jobs claimed for a dispatch that failed back in the outbox, for the relay.

    Only jobs still as the claim left them: a worker that got the message anyway (the
    broker took it, then the connection failed) has moved its job on.
    """
    session.connection().execute(
        _RELEASE_CLAIMS, {"job_ids": list(job_ids), "claimed_at": claimed_at, "now": now}
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


WAITING_STATES = frozenset({JobState.QUEUED, JobState.RETRYING, JobState.RUNNING})


def retry_job(session: Session, job_id: str, now: datetime) -> Job:
    """Put a job back in the outbox for another run, under the same id (operator action).

    FAILED and DEAD jobs can always be retried; QUEUED, RETRYING and RUNNING ones once they
    have waited longer than their kind's time limit (the broker lost them, or their worker
    died: what the reconciler would send again). A second copy of a job that was only slow
    is harmless: its verdict is decided once.
    """
    job = get_job(session, job_id)
    kind = job_kind(job.actor_name)
    limit = kind.time_limit
    overdue = job.state in WAITING_STATES and as_utc(job.updated_at) < now - limit
    finished_badly = job.state in (JobState.FAILED, JobState.DEAD)
    if not finished_badly and not overdue:
        raise JobNotRetryable(
            f"job {job_id} is {job.state.value}; only FAILED or DEAD jobs can be retried, or"
            " QUEUED, RETRYING and RUNNING ones without progress for longer than their"
            f" kind's time limit ({int(limit.total_seconds())} s)"
        )
    job.state = JobState.PENDING
    job.dispatched_at = None
    job.finished_at = None
    job.updated_at = now
    if finished_badly:
        _reopen_compensated_subject(session, kind, job.subject_id)
    return job


def _reopen_compensated_subject(session: Session, kind: JobKind, subject_id: str) -> None:
    """Undo the mark a final failure left where the new attempt can replace it.

    A file marked unscannable goes back to PENDING, or the scan actor would skip it as
    scanned: the retry then scans it and records what clamd says (a verdict decided
    meanwhile stays, since verdicts are decided once; the file gets its real status, and
    only a CLEAN file is ever served). A proof sent to review stays with its reviewer.
    """
    if kind.on_final_failure is not OnFinalFailure.MARK_FILE_UNSCANNABLE:
        return
    asset = session.get(Asset, subject_id)
    if asset is None or asset.deleted_at is not None or asset.quarantined_at is not None:
        return
    if asset.scan_status is ScanStatus.ERROR:
        asset.scan_status = ScanStatus.PENDING
        asset.scan_signature = None
        asset.scanned_at = None
