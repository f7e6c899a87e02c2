"""The retention sweep: orphans, rows without blobs, old quarantine, old job records, stuck jobs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from service.blobs import LocalBlobStore
from service.db import transaction
from service.domain.clock import utcnow
from service.domain.retention import (
    ORPHAN_GRACE,
    STUCK_AFTER,
    RetentionPolicy,
    count_stuck_jobs,
    sweep,
)
from service.domain.users import Role
from service.models import Asset, Job, JobState
from service.settings import Settings
from tests.jobs.conftest import age, blob_files, events, get_job
from tests.support.flows import DELIVERY_NOTE, OPERATOR, funded_rift, submit

POLICY = RetentionPolicy(job_records=timedelta(days=30), quarantine=timedelta(days=90))


def write_blob(store: LocalBlobStore, content: bytes) -> str:
    return store.write([content], max_bytes=1024 * 1024, label="test blob").key


def test_the_sweep_removes_what_nothing_needs_and_keeps_what_may_still_be_needed(
    client, auth, settings: Settings, sessions
):
    now = utcnow()
    store = LocalBlobStore(settings.blob_dir, settings.quarantine_dir)
    rift = funded_rift(client, auth)
    files = [
        (name, f"{name}\n{DELIVERY_NOTE}".encode(), "text/plain") for name in ("a.txt", "b.txt")
    ]
    submitted = submit(client, auth, rift["id"], files=files).json
    vanished_id, kept_id = submitted["asset_ids"]
    with transaction(sessions) as session:
        # Both assets were stored two hours ago; the blob of one then vanished.
        session.execute(
            update(Asset)
            .where(Asset.rift_id == rift["id"])
            .values(created_at=now - 2 * ORPHAN_GRACE)
        )
        vanished_key = session.get_one(Asset, vanished_id).storage_key
        kept_key = session.get_one(Asset, kept_id).storage_key
        jobs = session.scalars(select(Job).where(Job.rift_id == rift["id"])).all()
        old_done, recent_done, old_waiting = (j.id for j in jobs)
        session.execute(
            update(Job)
            .where(Job.id == old_done)
            .values(state=JobState.SUCCEEDED, finished_at=now - timedelta(days=31))
        )
        session.execute(
            update(Job)
            .where(Job.id == recent_done)
            .values(state=JobState.DEAD, finished_at=now - timedelta(days=29))
        )
        session.execute(
            update(Job).where(Job.id == old_waiting).values(created_at=now - timedelta(days=60))
        )
    (settings.blob_dir / vanished_key).unlink()
    # A crash between writing a blob and committing its row leaves an orphan.
    old_orphan = write_blob(store, b"orphaned upload " * 20)
    age(settings.blob_dir / old_orphan, now - 2 * ORPHAN_GRACE)
    # A young "orphan" may belong to a submission still in flight.
    young_orphan = write_blob(store, b"upload in flight " * 20)
    # An upload that crashed mid-stream left its half-written file; another is streaming.
    crashed_upload = settings.blob_dir / "2020/01/crashed.partial"
    crashed_upload.parent.mkdir(parents=True)
    crashed_upload.write_bytes(b"half an upl")
    age(crashed_upload, now - 2 * ORPHAN_GRACE)
    streaming = settings.blob_dir / "2020/01/streaming.partial"
    streaming.write_bytes(b"half an upl")
    expired = settings.quarantine_dir / "2020/01/expired"
    recent = settings.quarantine_dir / "2020/01/recent"
    for path, moment in ((expired, now - timedelta(days=91)), (recent, now - timedelta(days=89))):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"infected sample")
        age(path, moment)

    report = sweep(sessions, store, POLICY, now)

    assert (
        report.orphan_blobs_deleted,
        report.rows_missing_blobs,
        report.quarantine_deleted,
        report.job_records_deleted,
    ) == (2, 1, 1, 1)
    assert blob_files(settings.blob_dir) == {kept_key, young_orphan, "2020/01/streaming.partial"}
    assert blob_files(settings.quarantine_dir) == {"2020/01/recent"}
    missing = [e for e in events(client, auth, rift["id"]) if e["kind"] == "asset_blob_missing"]
    assert len(missing) == 1
    assert vanished_id in missing[0]["reason"]
    with sessions() as session:
        assert session.get_one(Asset, vanished_id).deleted_at is not None
        assert session.get_one(Asset, kept_id).deleted_at is None
    admin = auth(OPERATOR, Role.ADMIN)
    assert client.simulate_get(f"/api/jobs/{old_done}", headers=admin).status_code == 404
    assert get_job(client, auth, recent_done)["state"] == "DEAD"
    assert get_job(client, auth, old_waiting)["state"] == "QUEUED", "unfinished jobs are kept"

    # A second sweep finds nothing more to do.
    assert sweep(sessions, store, POLICY, now).total() == 0
    assert len(blob_files(settings.blob_dir)) == 3


def test_jobs_running_past_every_time_limit_are_counted_as_stuck(client, auth, sessions):
    now = utcnow()
    rift = funded_rift(client, auth)
    submitted = submit(client, auth, rift["id"], fields={"text": DELIVERY_NOTE}).json
    job_id = submitted["verification_job_id"]
    assert count_stuck_jobs(sessions, now) == 0
    with transaction(sessions) as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(state=JobState.RUNNING, updated_at=now - STUCK_AFTER - timedelta(minutes=1))
        )

    assert count_stuck_jobs(sessions, now) == 1
    assert count_stuck_jobs(sessions, now - timedelta(minutes=2)) == 0
