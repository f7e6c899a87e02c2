"""Upkeep: orphaned blobs, rows whose blob vanished, old quarantine, old job records, stuck jobs."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from service.blobs import BlobStore
from service.db import SessionFactory, transaction
from service.domain.clock import as_utc
from service.domain.queues import LONGEST_TIME_LIMIT
from service.domain.rifts import system_note
from service.models import FINAL_JOB_STATES, Asset, Job, JobState

log = logging.getLogger(__name__)

KEY_BATCH = 500
# A blob is written before its row commits; younger orphans may still be mid-submission.
ORPHAN_GRACE = timedelta(hours=1)
# A RUNNING job past the longest time limit of any kind, with room for a dead worker's
# message to come back (heartbeat timeout) and run again, is stuck: 5 + 10 = 15 minutes.
STUCK_MARGIN = timedelta(minutes=10)
STUCK_AFTER = LONGEST_TIME_LIMIT + STUCK_MARGIN


@dataclass(frozen=True)
class RetentionPolicy:
    job_records: timedelta
    quarantine: timedelta


@dataclass(frozen=True)
class SweepReport:
    orphan_blobs_deleted: int
    rows_missing_blobs: int
    quarantine_deleted: int
    job_records_deleted: int

    def total(self) -> int:
        return (
            self.orphan_blobs_deleted
            + self.rows_missing_blobs
            + self.quarantine_deleted
            + self.job_records_deleted
        )


def sweep(
    sessions: SessionFactory, blobs: BlobStore, policy: RetentionPolicy, now: datetime
) -> SweepReport:
    """Run every retention rule once."""
    return SweepReport(
        orphan_blobs_deleted=delete_orphan_blobs(sessions, blobs, now),
        rows_missing_blobs=mark_rows_missing_blobs(sessions, blobs, now),
        quarantine_deleted=expire_quarantine(blobs, now - policy.quarantine),
        job_records_deleted=delete_old_job_records(sessions, now - policy.job_records),
    )


def delete_orphan_blobs(sessions: SessionFactory, blobs: BlobStore, now: datetime) -> int:
    """Delete blobs no asset row names (a crash between writing a blob and committing)."""
    old = [b.key for b in blobs.list_blobs() if b.modified_at < now - ORPHAN_GRACE]
    deleted = 0
    for start in range(0, len(old), KEY_BATCH):
        batch = old[start : start + KEY_BATCH]
        with sessions() as session:
            known = set(
                session.scalars(select(Asset.storage_key).where(Asset.storage_key.in_(batch)))
            )
        for key in batch:
            if key not in known and blobs.delete(key):
                log.info("deleted orphaned blob", extra={"storage_key": key})
                deleted += 1
    return deleted


def mark_rows_missing_blobs(sessions: SessionFactory, blobs: BlobStore, now: datetime) -> int:
    """Mark live file assets whose blob is gone as deleted, with an event saying so."""
    present = {b.key for b in blobs.list_blobs()}
    marked = 0
    with transaction(sessions) as session:
        rows = session.scalars(
            select(Asset).where(
                Asset.storage_key.is_not(None),
                Asset.deleted_at.is_(None),
                Asset.quarantined_at.is_(None),
                Asset.created_at < now - ORPHAN_GRACE,
            )
        )
        for asset in rows:
            if asset.storage_key in present:
                continue
            asset.deleted_at = now
            session.add(
                system_note(
                    asset.rift_id,
                    "asset_blob_missing",
                    f"blob of asset {asset.id} missing; marked deleted",
                    now,
                )
            )
            marked += 1
    return marked


def expire_quarantine(blobs: BlobStore, cutoff: datetime) -> int:
    """Delete quarantined files kept past the retention period."""
    expired = [b.key for b in blobs.list_quarantined() if b.modified_at < cutoff]
    return sum(1 for key in expired if blobs.delete_quarantined(key))


def delete_old_job_records(sessions: SessionFactory, cutoff: datetime) -> int:
    """Delete finished job records older than the retention period."""
    with transaction(sessions) as session:
        result = session.execute(
            delete(Job).where(Job.state.in_(FINAL_JOB_STATES), Job.finished_at < cutoff)
        )
        return int(getattr(result, "rowcount", 0) or 0)


def count_stuck_jobs(sessions: SessionFactory, now: datetime) -> int:
    """Count jobs RUNNING for longer than any actor may run: a worker died or hangs."""
    with sessions() as session:
        stuck = session.scalars(
            select(Job)
            .where(Job.state == JobState.RUNNING, Job.updated_at < now - STUCK_AFTER)
            .limit(100)
        )
        jobs = list(stuck)
        for job in jobs:
            log.warning(
                "job stuck in RUNNING",
                extra={
                    "job_id": job.id,
                    "actor": job.actor_name,
                    "since": as_utc(job.updated_at).isoformat(),
                },
            )
        total = session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.state == JobState.RUNNING, Job.updated_at < now - STUCK_AFTER)
        )
        return int(total or 0)
