"""What operators do to jobs (retry one, retry all that match), each recorded: who, when, what."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.domain.errors import ConfirmationOutdated, InvalidInput
from service.domain.job_search import JobFilter
from service.domain.jobs import get_job, retry_job
from service.domain.users import User
from service.models import Job, OperatorAction

# One confirmation retries at most this many jobs: a mistaken filter stays a bounded mistake.
MAX_BULK_RETRY = 500


def record_action(
    session: Session,
    operator_id: str,
    action: str,
    now: datetime,
    *,
    job_id: str | None = None,
    rift_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> OperatorAction:
    """Add the record of one operator action to the session's transaction."""
    record = OperatorAction(
        actor_id=operator_id,
        action=action,
        job_id=job_id,
        rift_id=rift_id,
        detail=detail or {},
        created_at=now,
    )
    session.add(record)
    return record


def retry_one(session: Session, job_id: str, operator: User, now: datetime) -> Job:
    """Put one FAILED or DEAD job back in the outbox, and record who did it."""
    previous = get_job(session, job_id).state
    job = retry_job(session, job_id, now)
    record_action(
        session,
        operator.id,
        "retry_job",
        now,
        job_id=job.id,
        rift_id=job.rift_id,
        detail={"from_state": previous.value, "actor": job.actor_name},
    )
    return job


def count_retryable(session: Session, flt: JobFilter, now: datetime) -> int:
    """How many jobs a bulk retry of flt would run again (what the confirmation says)."""
    narrowed = flt.retryable()
    if narrowed is None:
        return 0
    where = narrowed.clauses(now)
    return session.scalar(select(func.count()).select_from(Job).where(*where)) or 0


def retry_matching(
    session: Session, flt: JobFilter, operator: User, now: datetime, *, confirmed_count: int
) -> list[Job]:
    """Retry every FAILED or DEAD job matching flt, if that is still the number confirmed."""
    narrowed = flt.retryable()
    if narrowed is None:
        raise InvalidInput(
            "the filter names no FAILED or DEAD state, so it matches nothing to retry",
            field="state",
        )
    jobs = list(
        session.scalars(
            select(Job)
            .where(*narrowed.clauses(now))
            .order_by(Job.created_at)
            .limit(MAX_BULK_RETRY + 1)
            .with_for_update()
        )
    )
    if len(jobs) > MAX_BULK_RETRY:
        raise InvalidInput(
            f"the filter matches more than {MAX_BULK_RETRY} retryable jobs; narrow it "
            "(by actor, rift or age) and retry in parts",
            field="filter",
        )
    if len(jobs) != confirmed_count:
        raise ConfirmationOutdated(
            f"the filter now matches {len(jobs)} retryable jobs, not the {confirmed_count} "
            "you confirmed; look at the list again and confirm the new number"
        )
    retried = [retry_job(session, job.id, now) for job in jobs]
    record_action(
        session,
        operator.id,
        "retry_jobs",
        now,
        detail={
            "filter": narrowed.as_dict(),
            "count": len(retried),
            "job_ids": [job.id for job in retried],
        },
    )
    return retried


def recent_actions(
    session: Session, *, limit: int = 20, job_id: str | None = None, rift_id: str | None = None
) -> list[OperatorAction]:
    """The latest operator actions, newest first; only those on a job or rift when given."""
    query = select(OperatorAction)
    if job_id is not None:
        query = query.where(OperatorAction.job_id == job_id)
    if rift_id is not None:
        query = query.where(OperatorAction.rift_id == rift_id)
    return list(session.scalars(query.order_by(OperatorAction.id.desc()).limit(limit)))
