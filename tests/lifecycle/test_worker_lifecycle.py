"""The job lifecycle with real worker processes on a real Redis broker.

Given a submission over HTTP, a `dramatiq actors.broker:setup` process verifies it; the job
record and the status endpoint say truthfully where it is at every step.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from service.domain.clock import new_id, utcnow
from service.domain.jobs import dispatch_jobs, new_job
from service.domain.queues import VERIFY_PROOF
from service.models import Job, JobState
from tests.support.brokers import BROKERS
from tests.support.flows import BUYER, DELIVERY_NOTE, SELLER, funded_rift, submit
from tests.support.hanging_server import HangingServer
from tests.support.processes import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("broker", BROKERS, indirect=True)]

VERDICT_TIMEOUT_S = 30.0
CLEAN_FIELDS = {"tracking_number": "1Z999AA10123456784", "text": DELIVERY_NOTE}
NOTE = ("delivery-note.txt", DELIVERY_NOTE.encode(), "text/plain")


def poll_status(
    client: Any, auth: Any, rift_id: str, until: set[str], timeout_s: float = VERDICT_TIMEOUT_S
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    seen = None
    while time.monotonic() < deadline:
        seen = client.simulate_get(
            f"/api/rifts/{rift_id}/verification-status", headers=auth(SELLER)
        ).json
        if seen["status"] in until:
            return dict(seen)
        time.sleep(0.05)
    raise AssertionError(f"status never reached {until}; last seen: {seen}")


def job_record(client: Any, auth: Any, job_id: str) -> dict[str, Any]:
    return dict(client.simulate_get(f"/api/jobs/{job_id}", headers=auth(SELLER)).json)


# The object store too: the API streams to S3, the worker reads the object back.
@pytest.mark.parametrize("blob_store", ["local", "s3"], indirect=True)
def test_a_worker_verifies_a_clean_submission_and_the_status_shows_the_verdict(
    client, auth, start_worker
):
    start_worker()
    rift = funded_rift(client, auth, item_type="DIGITAL_GOODS")
    accepted = submit(client, auth, rift["id"], fields=CLEAN_FIELDS, files=[NOTE]).json

    status = poll_status(client, auth, rift["id"], {"completed", "failed"})

    assert status["status"] == "completed"
    result = status["result"]
    assert (result["passed"], result["route_to_review"], result["auto_approved"]) == (
        True,
        False,
        True,
    )
    assert {a["type"] for a in result["assets"]} == {"FILE", "TRACKING", "TEXT"}
    file_asset = next(a for a in result["assets"] if a["type"] == "FILE")
    assert file_asset["scan_status"] == "CLEAN"
    wait_for(
        lambda: job_record(client, auth, accepted["verification_job_id"])["state"] == "SUCCEEDED",
        10,
        "the job record to say SUCCEEDED",
    )
    job = job_record(client, auth, accepted["verification_job_id"])
    assert job["attempts"] == 1
    assert job["result"]["proof_id"] == accepted["proof_id"]
    assert job["started_at"] and job["finished_at"]
    rift_now = client.simulate_get(f"/api/rifts/{rift['id']}", headers=auth(BUYER)).json
    assert rift_now["status"] == "PROOF_SUBMITTED"
    assert rift_now["proof_valid"] is True
    # Digital goods release 48 hours after a clean automatic verdict.
    submitted = status["result"]["decided_at"]
    assert rift_now["auto_release_at"] > submitted


def test_a_flagged_submission_goes_under_review_recorded_as_the_system(client, auth, start_worker):
    start_worker()
    rift = funded_rift(client, auth)
    submit(
        client,
        auth,
        rift["id"],
        fields={
            "tracking_number": "1Z999AA10123456784",
            "text": DELIVERY_NOTE + "<script>fetch('https://evil.example')</script>",
        },
    )

    status = poll_status(client, auth, rift["id"], {"completed", "failed"})

    assert status["result"]["route_to_review"] is True
    assert status["rift_status"] == "UNDER_REVIEW"
    text = next(a for a in status["result"]["assets"] if a["type"] == "TEXT")
    assert text["issues"], "the injected script must be named as an issue"
    events = client.simulate_get(f"/api/rifts/{rift['id']}/events", headers=auth(BUYER)).json
    review = [e for e in events["events"] if e["to_status"] == "UNDER_REVIEW"]
    assert len(review) == 1
    assert (review[0]["actor_role"], review[0]["actor_id"]) == ("SYSTEM", None)


def test_a_permanent_failure_is_failed_at_once_without_retries(
    sessions, api_context, auth, client, start_worker
):
    start_worker(["verification"])
    with sessions() as session, session.begin():
        job = new_job(
            session,
            VERIFY_PROOF,
            subject_id="no-such-proof",
            now=utcnow(),
            ids=new_id,
            requested_by=SELLER,
        )
    dispatch_jobs(sessions, api_context.dispatcher, [job], utcnow)

    def final() -> bool:
        with sessions() as session:
            return session.get(Job, job.id).state in (JobState.FAILED, JobState.DEAD)

    wait_for(final, VERDICT_TIMEOUT_S, "the job to fail")
    with sessions() as session:
        record = session.get(Job, job.id)
        assert record.state is JobState.FAILED
        assert record.attempts == 1
        assert "no proof no-such-proof" in record.last_error


def test_a_job_that_fails_then_succeeds_is_retried_with_its_attempts_counted(
    client, auth, settings, start_worker
):
    """A worker started with the wrong key secret fails; once fixed, the retry succeeds."""
    # Slow, plentiful retries on the broken worker: the job must still be alive when fixed.
    broken = replace(
        settings,
        license_key_secret="a-different-secret-0123456789abcdef012345",
        max_retries=50,
        min_backoff_ms=1_000,
        max_backoff_ms=2_000,
    )
    first = start_worker(["verification"], settings_override=broken)
    rift = funded_rift(client, auth)
    accepted = submit(client, auth, rift["id"], fields={"license_key": "ABCD-1234-EFGH-5678"}).json
    job_id = accepted["verification_job_id"]
    wait_for(
        lambda: job_record(client, auth, job_id)["state"] == "RETRYING",
        VERDICT_TIMEOUT_S,
        "the first attempt to fail",
    )
    assert "LicenseKeyDecryptionError" in job_record(client, auth, job_id)["last_error"]
    assert poll_status(client, auth, rift["id"], {"processing"})["status"] == "processing"
    first.stop()

    start_worker(["verification"])
    status = poll_status(client, auth, rift["id"], {"completed", "failed"})

    assert status["status"] == "completed"
    # The verdict commits inside the actor; the record's SUCCEEDED follows in the hook.
    wait_for(
        lambda: job_record(client, auth, job_id)["state"] == "SUCCEEDED",
        10,
        "the job record to say SUCCEEDED",
    )
    assert job_record(client, auth, job_id)["attempts"] >= 2


@pytest.mark.chaos
def test_a_worker_killed_mid_job_has_its_job_redelivered_and_finished_once(
    client, auth, settings, start_worker, sessions
):
    with HangingServer() as hung:
        stalled = replace(
            settings, clamd_address=f"tcp://127.0.0.1:{hung.port}", scan_timeout_s=60.0
        )
        doomed = start_worker(["scan"], settings_override=stalled)
        verifier = start_worker(["verification"])
        rift = funded_rift(client, auth)
        submit(client, auth, rift["id"], fields=CLEAN_FIELDS, files=[NOTE])
        assert hung.accepted.wait(VERDICT_TIMEOUT_S), "the scan never reached the scanner"
        with sessions() as session:
            scan_job = session.query(Job).filter(Job.actor_name == "scan_asset").one()
            assert scan_job.state is JobState.RUNNING
        assert poll_status(client, auth, rift["id"], {"processing"})["status"] == "processing"

        doomed.kill_hard()

    start_worker(["scan"])  # heartbeat timeout is 2 s in tests: the message comes back
    status = poll_status(client, auth, rift["id"], {"completed", "failed"})

    assert status["status"] == "completed"

    def scan_succeeded() -> bool:
        with sessions() as session:
            return session.get(Job, scan_job.id).state is JobState.SUCCEEDED

    wait_for(scan_succeeded, 10, "the scan job record to say SUCCEEDED")
    with sessions() as session:
        scan_job = session.get(Job, scan_job.id)
        assert scan_job.state is JobState.SUCCEEDED
        assert scan_job.attempts == 2
    events = client.simulate_get(f"/api/rifts/{rift['id']}/events", headers=auth(BUYER)).json
    verdict_events = [
        e
        for e in events["events"]
        if e["kind"] in ("proof_verified",) or e["to_status"] == "UNDER_REVIEW"
    ]
    assert len(verdict_events) == 1
    assert verifier.alive()


def test_operators_list_a_failed_job_and_retry_it(
    client, auth, sessions, api_context, start_worker
):
    from service.domain.users import Role

    admin = auth("ops", Role.ADMIN)
    start_worker(["verification"])
    with sessions() as session, session.begin():
        job = new_job(session, VERIFY_PROOF, subject_id="gone", now=utcnow(), ids=new_id)
    dispatch_jobs(sessions, api_context.dispatcher, [job], utcnow)
    wait_for(
        lambda: client.simulate_get("/api/admin/jobs", headers=admin).json["jobs"],
        VERDICT_TIMEOUT_S,
        "the failed job to be listed",
    )
    listed = client.simulate_get("/api/admin/jobs", headers=admin).json["jobs"]
    assert [j["id"] for j in listed] == [job.id]

    retried = client.simulate_post(f"/api/admin/jobs/{job.id}/retry", headers=admin)
    assert retried.status_code == 202
    assert retried.json["state"] in ("QUEUED", "RUNNING", "FAILED")
    wait_for(
        lambda: client.simulate_get(f"/api/jobs/{job.id}", headers=admin).json["attempts"] == 2,
        VERDICT_TIMEOUT_S,
        "the retried attempt",
    )
    again = client.simulate_post(f"/api/admin/jobs/{job.id}/retry", headers=admin)
    assert again.status_code in (202, 409)
    _ = timedelta
