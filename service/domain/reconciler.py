"""Find jobs the broker lost or that ran out of deliveries; send them again or end them.

The job record is the truth; Redis is a delivery mechanism that can lose messages (a
restart without its append-only file, a retry that could not be enqueued, a worker
killed and its message's redelivery lost with it). A job whose record sits in QUEUED,
RETRYING or RUNNING for longer than its kind allows is re-dispatched with the same id:
delivery is at least once, and the verdict is decided once under the proof's lock, so
a second copy is harmless. A job started more times than its kind allows (a message that
kills its worker every time never advances Dramatiq's retry counter) is ended DEAD, and
its kind's compensation runs once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update

from service.db import SessionFactory, transaction
from service.domain.clock import Clock
from service.domain.jobs import BrokerUnavailable, JobDispatcher
from service.domain.queues import ALL_JOB_KINDS, SCAN_ASSET, VERIFY_PROOF, JobKind, job_kind
from service.models import Asset, Job, JobState, Proof, ScanStatus

log = logging.getLogger(__name__)

RECONCILE_BATCH_SIZE = 500
# Deliveries beyond retries + 1 that a kind tolerates before a job counts as poison: a
# graceful restart or a dead worker's redelivery also starts an attempt again.
EXTRA_DELIVERIES = 2
WAITING_STATES = (JobState.QUEUED, JobState.RETRYING, JobState.RUNNING)
# How far back a final failure's missed compensation is looked for (a database outage
# longer than this needs an operator's retry).
COMPENSATION_LOOKBACK = timedelta(days=7)
# How the last_error of a job the reconciler sent again begins.
REDISPATCHED = "re-dispatched"


@dataclass(frozen=True)
class ReconcileLimits:
    """How long a job may sit in each waiting state before it counts as lost.

    Parameters:
      queued_after: a QUEUED job not taken by then is sent again (the broker lost it, or
        the queue is backed up: a second copy is harmless either way).
      retry_margin: a RETRYING job waits at most the longest back-off plus this.
      running_margin: a RUNNING job runs at most its kind's time limit plus this (room for
        a dead worker's heartbeat to time out).
      max_retries: the system-wide retries, for kinds that declare none.
      max_backoff: the longest retry back-off.
    """

    queued_after: timedelta
    retry_margin: timedelta
    running_margin: timedelta
    max_retries: int
    max_backoff: timedelta

    def overdue_after(self, kind: JobKind, state: JobState) -> timedelta:
        if state is JobState.QUEUED:
            return self.queued_after
        if state is JobState.RETRYING:
            return self.max_backoff + self.retry_margin
        return kind.time_limit + self.running_margin

    def allowed_deliveries(self, kind: JobKind) -> int:
        return kind.retries(self.max_retries) + 1 + EXTRA_DELIVERIES


@dataclass
class Reconciled:
    """What one pass did."""

    redispatched: list[str] = field(default_factory=list)
    dead: list[Job] = field(default_factory=list)
    compensated: list[str] = field(default_factory=list)


FinalFailure = Callable[[Job], None]
#: How many messages the broker holds for a queue: waiting, taken, running or delayed.
Backlog = Callable[[str], int]


def overdue_jobs(sessions: SessionFactory, limits: ReconcileLimits, now: datetime) -> list[Job]:
    """The dispatched jobs sitting in a waiting state past their kind's limit, oldest first."""
    conditions = [
        (Job.actor_name == kind.actor_name)
        & (Job.state == state)
        & (Job.updated_at < now - limits.overdue_after(kind, state))
        for kind in ALL_JOB_KINDS
        for state in WAITING_STATES
    ]
    with sessions() as session:
        return list(
            session.scalars(
                select(Job)
                .where(Job.dispatched_at.is_not(None), or_(*conditions))
                .order_by(Job.updated_at)
                .limit(RECONCILE_BATCH_SIZE)
            )
        )


def count_overdue_jobs(
    sessions: SessionFactory, limits: ReconcileLimits, now: datetime
) -> dict[tuple[str, str], int]:
    """Dispatched jobs past their kind's limit, per (queue, state): what a metric shows."""
    counts: dict[tuple[str, str], int] = {}
    with sessions() as session:
        for kind in ALL_JOB_KINDS:
            for state in WAITING_STATES:
                n = session.scalar(
                    select(func.count())
                    .select_from(Job)
                    .where(
                        Job.actor_name == kind.actor_name,
                        Job.state == state,
                        Job.dispatched_at.is_not(None),
                        Job.updated_at < now - limits.overdue_after(kind, state),
                    )
                )
                key = (kind.queue_name, state.value)
                counts[key] = counts.get(key, 0) + int(n or 0)
    return counts


def poisoned_jobs(sessions: SessionFactory, limits: ReconcileLimits) -> list[Job]:
    """Unfinished jobs started more times than their kind allows."""
    conditions = [
        (Job.actor_name == kind.actor_name) & (Job.attempts > limits.allowed_deliveries(kind))
        for kind in ALL_JOB_KINDS
    ]
    with sessions() as session:
        return list(
            session.scalars(
                select(Job)
                .where(Job.state.in_(WAITING_STATES), or_(*conditions))
                .limit(RECONCILE_BATCH_SIZE)
            )
        )


def uncompensated_jobs(sessions: SessionFactory, now: datetime) -> list[Job]:
    """FAILED or DEAD jobs whose subject still waits on them: a file PENDING, a proof
    without a verdict (their compensation did not happen). Only recent ones: the pass
    runs every few seconds, and older failures were looked at by every earlier pass."""
    final = Job.state.in_((JobState.FAILED, JobState.DEAD)) & (
        Job.updated_at > now - COMPENSATION_LOOKBACK
    )
    scans = (
        select(Job)
        .join(Asset, Asset.id == Job.subject_id)
        .where(
            Job.actor_name == SCAN_ASSET.actor_name,
            final,
            Asset.scan_status == ScanStatus.PENDING,
            Asset.deleted_at.is_(None),
        )
        .limit(RECONCILE_BATCH_SIZE)
    )
    verifications = (
        select(Job)
        .join(Proof, Proof.id == Job.subject_id)
        .where(Job.actor_name == VERIFY_PROOF.actor_name, final, Proof.verdict_at.is_(None))
        .limit(RECONCILE_BATCH_SIZE)
    )
    with sessions() as session:
        return [*session.scalars(scans), *session.scalars(verifications)]


def unfinished_per_queue(sessions: SessionFactory) -> dict[str, int]:
    """Dispatched jobs per queue that the broker should still hold a message for."""
    with sessions() as session:
        rows = session.execute(
            select(Job.queue_name, func.count())
            .where(Job.state.in_(WAITING_STATES), Job.dispatched_at.is_not(None))
            .group_by(Job.queue_name)
        )
        return {queue: int(n) for queue, n in rows}


def reconcile(
    sessions: SessionFactory,
    dispatcher: JobDispatcher,
    clock: Clock,
    limits: ReconcileLimits,
    on_final_failure: FinalFailure,
    backlog: Backlog | None = None,
) -> Reconciled:
    """One pass: end poison jobs DEAD, compensate missed final failures, resend overdue jobs."""
    done = Reconciled()
    for job in poisoned_jobs(sessions, limits):
        kind = job_kind(job.actor_name)
        reason = (
            f"started {job.attempts} times, more than the {limits.allowed_deliveries(kind)} "
            "deliveries its kind allows (each delivery ended its worker)"
        )
        if _move(sessions, job, JobState.DEAD, clock(), reason, finished=True):
            log.error("poison job ended DEAD", extra={"job_id": job.id, "attempts": job.attempts})
            job.state, job.last_error = JobState.DEAD, reason
            on_final_failure(job)
            done.dead.append(job)

    # A compensation that failed itself (the database down at that moment) runs again:
    # each one is idempotent and decided under the proof's lock.
    for job in uncompensated_jobs(sessions, clock()):
        log.warning("compensating a final failure again", extra={"job_id": job.id})
        on_final_failure(job)
        done.compensated.append(job.id)

    overdue = overdue_jobs(sessions, limits, clock())
    if backlog is not None and overdue:
        # A queue whose broker still holds a message for every unfinished job has lost
        # none: its QUEUED and RETRYING jobs only wait their turn (a backlog, not a loss),
        # and sending them again would only pile copies onto it. RUNNING past the time
        # limit is sent again regardless (its worker hung or died with the message).
        expected = unfinished_per_queue(sessions)
        intact = {q for q, n in expected.items() if backlog(q) >= n}
        overdue = [j for j in overdue if j.state is JobState.RUNNING or j.queue_name not in intact]
    if not overdue:
        return done
    try:
        dispatcher.dispatch_many(overdue)
    except BrokerUnavailable as exc:
        log.warning("broker unavailable; overdue jobs wait", extra={"error": str(exc)})
        return done
    for job in overdue:
        reason = f"{REDISPATCHED}: {job.state.value} for longer than its kind allows"
        # Back to QUEUED: the status says the job waits for a worker, not that one has it.
        if _move(sessions, job, JobState.QUEUED, clock(), reason, finished=False):
            done.redispatched.append(job.id)
    if done.redispatched:
        log.warning("re-dispatched overdue jobs", extra={"job_ids": done.redispatched})
    return done


def _move(
    sessions: SessionFactory,
    job: Job,
    state: JobState,
    now: datetime,
    reason: str,
    *,
    finished: bool,
) -> bool:
    """Move job to state only if nobody moved it since it was read (a worker may have)."""
    values: dict[str, object] = {"state": state, "updated_at": now, "last_error": reason}
    if finished:
        values["finished_at"] = now
    with transaction(sessions) as session:
        result = session.execute(
            update(Job)
            .where(Job.id == job.id, Job.state == job.state, Job.updated_at == job.updated_at)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    return bool(getattr(result, "rowcount", 0))


def waiting_for_redelivery(job: Job) -> bool:
    """The reconciler sent the job again and no worker has taken it since."""
    return job.state is JobState.QUEUED and (job.last_error or "").startswith(REDISPATCHED)
