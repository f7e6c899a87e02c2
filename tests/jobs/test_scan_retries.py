"""clamd unreachable is an outage, not a verdict: retried with backoff, then ERROR and review."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pytest

from service.domain.users import Role
from service.settings import Settings
from tests.jobs.conftest import (
    JOB_TIMEOUT_S,
    get_job,
    scan_job_ids,
    start_clamd_on,
    status,
    wait_for_job,
    wait_for_verdict,
)
from tests.scanning.clamd_process import stop_process
from tests.support.flows import DELIVERY_NOTE, OPERATOR, funded_rift, submit
from tests.support.processes import free_port

pytestmark = pytest.mark.slow

NOTE = ("delivery.txt", DELIVERY_NOTE.encode(), "text/plain")


def states_until(client, auth, job_id: str, final: set[str], timeout_s: float = JOB_TIMEOUT_S):
    """Poll a job, recording every (state, attempts) seen, until it reaches a final state."""
    seen: list[tuple[str, int]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = get_job(client, auth, job_id)
        if not seen or seen[-1] != (job["state"], job["attempts"]):
            seen.append((job["state"], job["attempts"]))
        if job["state"] in final:
            return job, seen
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {final}; seen {seen}")


def unreachable(kind: str, tmp_path: Path) -> str:
    if kind == "tcp":
        return f"tcp://127.0.0.1:{free_port()}"
    # A long socket path makes a long error, longer than the asset's note column.
    return f"unix://{tmp_path / ('no-clamd-here-' * 12)}/clamd.ctl"


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_clamd_unreachable_retries_then_dead_and_the_file_is_error_sending_proof_to_review(
    client, auth, settings: Settings, sessions, start_worker, tmp_path: Path, kind: str
):
    nothing_there = unreachable(kind, tmp_path)
    start_worker(settings_override=replace(settings, clamd_address=nothing_there))
    rift = funded_rift(client, auth)

    submitted = submit(client, auth, rift["id"], files=[NOTE])

    [asset_id] = submitted.json["asset_ids"]
    scan_id = scan_job_ids(sessions, [asset_id])[asset_id]
    job, seen = states_until(client, auth, scan_id, {"SUCCEEDED", "FAILED", "DEAD"})
    assert job["state"] == "DEAD"
    # max_retries=3: the first attempt and three retries, each counted.
    assert job["attempts"] == settings.max_retries + 1
    assert "cannot connect to clamd" in job["last_error"]
    retrying = [attempts for state, attempts in seen if state == "RETRYING"]
    assert retrying, f"never seen RETRYING: {seen}"
    assert retrying == sorted(retrying)
    verdict = wait_for_verdict(client, auth, rift["id"])
    [asset] = verdict["result"]["assets"]
    assert asset["scan_status"] == "ERROR"
    assert asset["scan_signature"].startswith("scan failed:")
    assert "cannot connect to clamd" in asset["scan_signature"]
    assert len(asset["scan_signature"]) <= 200, "fits the column, also on PostgreSQL"
    assert verdict["rift_status"] == "UNDER_REVIEW"
    assert "scan.error" in [r["code"] for r in verdict["result"]["reasons"]]
    # Operators see it among the dead jobs.
    dead = client.simulate_get(
        "/api/admin/jobs", params={"state": "DEAD"}, headers=auth(OPERATOR, Role.ADMIN)
    )
    assert scan_id in [j["id"] for j in dead.json["jobs"]]


def test_a_scan_retried_until_clamd_comes_up_succeeds(
    client, auth, settings: Settings, sessions, start_worker, tmp_path: Path
):
    port = free_port()
    patient = replace(
        settings,
        clamd_address=f"tcp://127.0.0.1:{port}",
        max_retries=20,
        min_backoff_ms=200,
        max_backoff_ms=500,
    )
    start_worker(settings_override=patient)
    rift = funded_rift(client, auth)
    submitted = submit(client, auth, rift["id"], files=[NOTE])
    [asset_id] = submitted.json["asset_ids"]
    scan_id = scan_job_ids(sessions, [asset_id])[asset_id]
    wait_for_job(client, auth, scan_id, {"RETRYING"})
    assert status(client, auth, rift["id"])["result"] is None, "no verdict while clamd is down"

    clamd = start_clamd_on(tmp_path / "clamd", port)
    try:
        job = wait_for_job(client, auth, scan_id)
        verdict = wait_for_verdict(client, auth, rift["id"])
    finally:
        stop_process(clamd.pid)

    assert job["state"] == "SUCCEEDED"
    assert job["attempts"] >= 2
    assert job["result"]["scan_status"] == "CLEAN"
    [asset] = verdict["result"]["assets"]
    assert asset["scan_status"] == "CLEAN"
