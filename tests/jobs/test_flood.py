"""Separate pools: a flood of scans cannot starve verification."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from service.blobs import LocalBlobStore
from service.db import transaction
from service.domain.clock import new_id, utcnow
from service.domain.jobs import dispatch_jobs
from service.domain.proofs import ProofSubmission, UploadedFile, submit_proof
from service.domain.queues import SCAN_ASSET
from service.domain.users import Role, User
from service.models import Job, JobState
from service.settings import Settings
from service.verification.license_keys import LicenseKeyVault
from tests.jobs.conftest import wait_for_job
from tests.support.flows import DELIVERY_NOTE, SELLER, funded_rift, submit

pytestmark = pytest.mark.slow

FLOOD_SIZE = 200
FLOOD_FILE_BYTES = 64 * 1024
# Verification of a text-only proof takes well under a second on an idle worker.
PROMPT_S = 10.0


def scans_finished(sessions) -> int:
    with sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.actor_name == SCAN_ASSET.actor_name, Job.state == JobState.SUCCEEDED)
            )
            or 0
        )


def flood_of_scans(client, auth, settings: Settings, sessions, api_context) -> list[Job]:
    """One proof of FLOOD_SIZE files, stored through the domain; only its scans dispatched."""
    rift = funded_rift(client, auth)
    store = LocalBlobStore(settings.blob_dir, settings.quarantine_dir)
    line = DELIVERY_NOTE.encode()
    files = []
    for n in range(FLOOD_SIZE):
        content = (f"file {n}\n".encode() + line * (FLOOD_FILE_BYTES // len(line)))[
            :FLOOD_FILE_BYTES
        ]
        blob = store.write([content], max_bytes=FLOOD_FILE_BYTES, label=f"file {n}")
        files.append(UploadedFile(blob, f"{n}.txt", "text/plain", "text/plain"))
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
    scans = flood_of_scans(client, auth, settings, sessions, api_context)
    assert dispatch_jobs(sessions, api_context.dispatcher, scans, utcnow) == FLOOD_SIZE
    # The flood is under way: the scan pool is busy and its queue is long.
    deadline = time.monotonic() + 30
    while scans_finished(sessions) < 5:
        assert time.monotonic() < deadline, "the scan pool never got going"
        time.sleep(0.05)

    rift = funded_rift(client, auth)
    started = time.monotonic()
    submitted = submit(
        client,
        auth,
        rift["id"],
        fields={"tracking_number": "1Z999AA10123456784", "text": DELIVERY_NOTE},
    )
    job = wait_for_job(client, auth, submitted.json["verification_job_id"], timeout_s=PROMPT_S)
    took_s = time.monotonic() - started
    scanned = scans_finished(sessions)

    assert job["state"] == "SUCCEEDED"
    assert job["result"]["verdict"] is not None
    assert scanned < FLOOD_SIZE / 2, (
        f"verification took {took_s:.1f}s; {scanned}/{FLOOD_SIZE} scans were done by then"
    )
    assert redis_conn.llen("dramatiq:scan") > 0, "the scan queue still had a backlog"
