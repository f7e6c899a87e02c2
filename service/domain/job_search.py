"""Operators' job search: filter by state, actor, rift, job id and age; page by cursor."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from service.domain.clock import as_utc
from service.domain.errors import InvalidInput
from service.models import FINAL_JOB_STATES, Job, JobState, OperatorAction

RETRYABLE_STATES = (JobState.FAILED, JobState.DEAD)
MAX_PAGE_SIZE = 200
#: A listing counts its matches up to this many: counting every one of 10^6 job records
#: would cost more than the page itself; past it the total says "at least".
MAX_COUNTED = 1000


@dataclass(frozen=True)
class JobFilter:
    """Which job records an operator means; every criterion given must hold."""

    states: tuple[JobState, ...] = ()
    actor: str | None = None
    rift_id: str | None = None
    job_id: str | None = None
    # Age is time since the job was created.
    min_age_s: int | None = None
    max_age_s: int | None = None

    def clauses(self, now: datetime) -> list[ColumnElement[bool]]:
        """The WHERE conditions of this filter at the moment now."""
        found: list[ColumnElement[bool]] = []
        if self.states:
            found.append(Job.state.in_(self.states))
        if self.actor:
            found.append(Job.actor_name == self.actor)
        if self.rift_id:
            found.append(Job.rift_id == self.rift_id)
        if self.job_id:
            found.append(Job.id == self.job_id)
        if self.min_age_s is not None:
            found.append(Job.created_at <= now - timedelta(seconds=self.min_age_s))
        if self.max_age_s is not None:
            found.append(Job.created_at >= now - timedelta(seconds=self.max_age_s))
        return found

    def retryable(self) -> JobFilter | None:
        """The same filter narrowed to the states an operator may retry; None if none are."""
        if not self.states:
            return replace(self, states=RETRYABLE_STATES)
        states = tuple(s for s in self.states if s in RETRYABLE_STATES)
        # A filter for SUCCEEDED jobs only matches nothing to retry, not every failure.
        return replace(self, states=states) if states else None

    def as_dict(self) -> dict[str, Any]:
        """The criteria given, as plain JSON (recorded with bulk actions)."""
        view: dict[str, Any] = {"states": [s.value for s in self.states]} if self.states else {}
        for name in ("actor", "rift_id", "job_id", "min_age_s", "max_age_s"):
            value = getattr(self, name)
            if value not in (None, ""):
                view[name] = value
        return view


def parse_states(raw: list[str]) -> tuple[JobState, ...]:
    """Read state names (any case); an unknown one is a 422 naming the valid ones."""
    try:
        return tuple(JobState(s.strip().upper()) for s in raw if s.strip())
    except ValueError:
        names = ", ".join(s.value for s in JobState)
        raise InvalidInput(f"state must be one of: {names}", field="state") from None


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    #: Matching jobs, counted up to MAX_COUNTED.
    total: int
    next_cursor: str | None = None
    filter: JobFilter = field(default_factory=JobFilter)
    #: More than MAX_COUNTED match: `total` is where the count stopped.
    total_is_lower_bound: bool = False


def _encode_cursor(job: Job) -> str:
    raw = f"{as_utc(job.created_at).isoformat()}|{job.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, job_id = raw.split("|", 1)
        return datetime.fromisoformat(moment), job_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "cursor is not one this service handed out; start from the first page",
            field="cursor",
        ) from None


def search_jobs(
    session: Session, flt: JobFilter, now: datetime, *, limit: int, cursor: str | None = None
) -> JobPage:
    """Return one page of matching jobs, newest first, with how many match (bounded)."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"limit must be 1-{MAX_PAGE_SIZE}", field="limit")
    where = flt.clauses(now)
    # Count one past the bound, so the page can say "more than MAX_COUNTED".
    matching = select(Job.id).where(*where).limit(MAX_COUNTED + 1).subquery()
    counted = session.scalar(select(func.count()).select_from(matching)) or 0
    query = select(Job).where(*where)
    if cursor:
        # Keyset paging on (created_at, id): stable while jobs change state, and no OFFSET
        # scan over the pages before. The plain `created_at <=` lets the created_at
        # indexes start the scan at the cursor (the OR alone is only a filter).
        created_at, job_id = _decode_cursor(cursor)
        query = query.where(
            Job.created_at <= created_at,
            or_(Job.created_at < created_at, and_(Job.created_at == created_at, Job.id < job_id)),
        )
    rows = list(
        session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1))
    )
    more = len(rows) > limit
    jobs = rows[:limit]
    return JobPage(
        jobs=jobs,
        total=min(counted, MAX_COUNTED),
        next_cursor=_encode_cursor(jobs[-1]) if more else None,
        filter=flt,
        total_is_lower_bound=counted > MAX_COUNTED,
    )


def job_timeline(job: Job, actions: Sequence[OperatorAction] = ()) -> list[tuple[datetime, str]]:
    """What happened to a job when: its record's moments and the operators' retries.

    The record counts attempts but keeps no row per attempt; the retries an operator made
    are the marks between one run and the next.
    """
    moments = [
        (job.created_at, "created (in the outbox)"),
        (job.dispatched_at, "last handed to the broker"),
        (job.started_at, "first attempt started"),
    ]
    moments += [
        (
            action.created_at,
            f"{action.action.replace('_', ' ')} by {action.actor_id}"
            + (f" (it was {action.detail['from_state']})" if "from_state" in action.detail else ""),
        )
        for action in actions
    ]
    if job.state in FINAL_JOB_STATES:
        moments.append(
            (job.finished_at, f"finished {job.state.value} after {job.attempts} attempt(s)")
        )
    else:
        moments.append((job.updated_at, f"now {job.state.value}, attempt {job.attempts}"))
    dated = [(as_utc(m), what) for m, what in moments if m is not None]
    return sorted(dated, key=lambda pair: pair[0])
