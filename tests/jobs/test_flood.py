"""Separate pools: a flood of scans cannot starve verification."""

from __future__ import annotations

import functools
import io
import struct
import uuid
import zipfile
from datetime import datetime

import pytest
from sqlalchemy import select

from service.blobs import LocalBlobStore
from service.db import transaction
from service.domain.clock import as_utc, new_id, utcnow
from service.domain.jobs import dispatch_jobs
from service.domain.proofs import ProofSubmission, UploadedFile, submit_proof
from service.domain.queues import SCAN_ASSET
from service.domain.users import Role, User
from service.models import Job, JobState
from service.settings import Settings
from service.verification.license_keys import LicenseKeyVault
from tests.jobs.conftest import wait_for_job
from tests.support.flows import DELIVERY_NOTE, SELLER, funded_rift, submit
from tests.support.processes import wait_for

pytestmark = pytest.mark.slow

FLOOD_SIZE = 200
# The head of the flood: zips of many small members keep clamd busy for about a second
# each (content differs, so clamd's cache of clean files does not shortcut them). A pool
# shared with verification would make verification wait for whole scans.
SLOW_SCANS = 20
SLOW_ZIP_MEMBERS = 6000


@functools.cache
def slow_zip_template() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for member in range(SLOW_ZIP_MEMBERS):
            archive.writestr(f"receipt-{member}.txt", f"delivered {member}\n")
    return buffer.getvalue()


def slow_zip(n: int) -> bytes:
    """The template with a comment of its own: new bytes (no cache hit), the same slow scan."""
    template = slow_zip_template()
    # The archive ends with its 22-byte end record, whose last field is the comment length.
    assert template[-22:-18] == b"PK\x05\x06" and template[-2:] == b"\0\0"
    comment = f"flood zip {n} {uuid.uuid4()}".encode()
    return template[:-2] + struct.pack("<H", len(comment)) + comment


def flood_file(n: int) -> tuple[bytes, str]:
    if n < SLOW_SCANS:
        return slow_zip(n), "application/zip"
    return f"delivery note {n}\n{DELIVERY_NOTE}".encode(), "text/plain"


def finished_scans(sessions) -> list[Job]:
    with sessions() as session:
        return list(
            session.scalars(
                select(Job).where(
                    Job.actor_name == SCAN_ASSET.actor_name, Job.state == JobState.SUCCEEDED
                )
            )
        )


def flood_of_scans(client, auth, settings: Settings, sessions) -> list[Job]:
    """One proof of FLOOD_SIZE files, stored through the domain; returns its scan jobs."""
    rift = funded_rift(client, auth)
    store = LocalBlobStore(settings.blob_dir, settings.quarantine_dir)
    files = []
    for n in range(FLOOD_SIZE):
        content, mime = flood_file(n)
        blob = store.write([content], max_bytes=settings.max_file_bytes, label=f"file {n}")
        files.append(UploadedFile(blob, f"flood-{n}", mime, mime))
    with transaction(sessions) as session:
        receipt = submit_proof(
            session,
            rift["id"],
            User(SELLER, Role.USER),
            ProofSubmission(files=files),
            idempotency_key=None,
            sealer=LicenseKeyVault(settings.license_key_secret.encode()),
            now=utcnow(),
            ids=new_id,
        )
    scans = [job for job in receipt.jobs if job.actor_name == SCAN_ASSET.actor_name]
    assert len(scans) == FLOOD_SIZE
    return scans


def test_a_verification_submitted_during_a_scan_flood_completes_long_before_the_flood_drains(
    client, auth, settings: Settings, sessions, api_context, start_worker, redis_conn
):
    start_worker(["verification"])
    start_worker(["scan"], threads=1)
    scans = flood_of_scans(client, auth, settings, sessions)
    assert dispatch_jobs(sessions, api_context.dispatcher, scans, utcnow) == FLOOD_SIZE
    # The flood is under way: the scan pool is busy and its queue is long.
    wait_for(lambda: len(finished_scans(sessions)) >= 1, 30, "the scan pool to get going")

    rift = funded_rift(client, auth)
    submitted = submit(
        client,
        auth,
        rift["id"],
        fields={"tracking_number": "1Z999AA10123456784", "text": DELIVERY_NOTE},
    )
    job = wait_for_job(client, auth, submitted.json["verification_job_id"])
    # From the job record's creation (inside the submission) to its end, as the worker saw it.
    took_s = (
        datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["created_at"])
    ).total_seconds()

    assert job["state"] == "SUCCEEDED"
    assert job["result"]["verdict"] is not None
    done = finished_scans(sessions)
    one_scan_s = min((as_utc(j.finished_at) - as_utc(j.started_at)).total_seconds() for j in done)
    # Sharing the scan pool's thread, verification would wait for at least the scan in
    # progress and those prefetched ahead of it; with its own pool it waits for none.
    assert took_s < one_scan_s, f"verification took {took_s:.2f}s; one scan {one_scan_s:.2f}s"
    assert len(done) < SLOW_SCANS
    assert redis_conn.llen("dramatiq:scan") > FLOOD_SIZE / 2, "the scan backlog was still there"
