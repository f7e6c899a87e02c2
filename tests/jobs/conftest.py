"""Helpers for the job-system tests: reading jobs and rifts back the way a user would."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import falcon.testing
import pytest
from sqlalchemy import select

from service.blobs import blob_store_from_settings
from service.db import SessionFactory
from service.domain.queues import SCAN_ASSET
from service.domain.users import Role
from service.models import Job
from service.settings import Settings
from tests.scanning.clamd_process import (
    RunningClamd,
    run_start_script,
    start_clamd,
    stop_process,
)
from tests.support.flows import OPERATOR, SELLER

# The standard 68-byte EICAR test string, assembled here so this file is not itself flagged.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "DEAD"})
JOB_TIMEOUT_S = 30.0


def get_job(client: falcon.testing.TestClient, auth: Any, job_id: str) -> dict[str, Any]:
    """GET /api/jobs/{id} as an operator (who may read every job)."""
    result = client.simulate_get(f"/api/jobs/{job_id}", headers=auth(OPERATOR, Role.ADMIN))
    assert result.status_code == 200, result.text
    return dict(result.json)


def wait_for_job(
    client: falcon.testing.TestClient,
    auth: Any,
    job_id: str,
    states: frozenset[str] | set[str] = FINAL_STATES,
    timeout_s: float = JOB_TIMEOUT_S,
) -> dict[str, Any]:
    """Poll the job over the API until it reaches one of states; return it."""
    deadline = time.monotonic() + timeout_s
    job = get_job(client, auth, job_id)
    while job["state"] not in states:
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job['state']} after {timeout_s}s: {job}")
        time.sleep(0.05)
        job = get_job(client, auth, job_id)
    return job


def status(client: falcon.testing.TestClient, auth: Any, rift_id: str) -> dict[str, Any]:
    result = client.simulate_get(f"/api/rifts/{rift_id}/verification-status", headers=auth(SELLER))
    assert result.status_code == 200, result.text
    return dict(result.json)


def wait_for_verdict(
    client: falcon.testing.TestClient, auth: Any, rift_id: str, timeout_s: float = JOB_TIMEOUT_S
) -> dict[str, Any]:
    """Poll the verification status until the verdict is in; return the status."""
    deadline = time.monotonic() + timeout_s
    current = status(client, auth, rift_id)
    while current["status"] != "completed":
        if time.monotonic() > deadline:
            raise AssertionError(f"no verdict for rift {rift_id} after {timeout_s}s: {current}")
        time.sleep(0.05)
        current = status(client, auth, rift_id)
    return current


def events(client: falcon.testing.TestClient, auth: Any, rift_id: str) -> list[dict[str, Any]]:
    result = client.simulate_get(f"/api/rifts/{rift_id}/events", headers=auth(SELLER))
    assert result.status_code == 200, result.text
    return list(result.json["events"])


def scan_job_ids(sessions: SessionFactory, asset_ids: list[str]) -> dict[str, str]:
    """Map each file asset to the id of its scan job (the API returns only the verify job)."""
    with sessions() as session:
        rows = session.execute(
            select(Job.subject_id, Job.id).where(
                Job.actor_name == SCAN_ASSET.actor_name, Job.subject_id.in_(asset_ids)
            )
        )
        return {subject: job_id for subject, job_id in rows}


def age(path: os.PathLike[str] | str, moment: datetime) -> None:
    """Set a file's modification time, the clock the retention sweep judges files by."""
    os.utime(path, (moment.timestamp(), moment.timestamp()))


def blob_files(root: Path) -> set[str]:
    """Storage keys of the files under a blob (or quarantine) directory."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def stored_keys(settings: Settings) -> set[str]:
    """Storage keys of the blobs in the store settings name (local directory or S3)."""
    return {b.key for b in blob_store_from_settings(settings).list_blobs()}


def quarantined_keys(settings: Settings) -> set[str]:
    return {b.key for b in blob_store_from_settings(settings).list_quarantined()}


def stored_content(settings: Settings, key: str) -> bytes:
    """A blob's bytes, wherever the store keeps it (quarantine included)."""
    with blob_store_from_settings(settings).open(key) as stream:
        return stream.read()


def start_clamd_on(runtime_dir: Path, port: int, *options: str) -> RunningClamd:
    """Start a real clamd on a given port (start_clamd picks its own)."""
    started = run_start_script(*options, runtime_dir, str(port))
    if started.returncode != 0:
        raise RuntimeError(f"start-clamd.sh failed ({started.returncode}):\n{started.stderr}")
    pid = int((runtime_dir / "clamd.pid").read_text().strip())
    return RunningClamd(runtime_dir=runtime_dir, port=port, pid=pid)


SMALL_STREAM_MAX_KIB = 256


@pytest.fixture(scope="session")
def small_stream_clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningClamd]:
    """A clamd whose StreamMaxLength is SMALL_STREAM_MAX_KIB, so a modest upload exceeds it."""
    running = start_clamd(
        tmp_path_factory.mktemp("clamd-small"), "--stream-max-length", f"{SMALL_STREAM_MAX_KIB}K"
    )
    yield running
    stop_process(running.pid)
