"""Sentry, against a local endpoint that receives the SDK's envelopes.

A job is reported once, when it has finally failed, tagged so that it can be found; a
failed attempt that a retry repairs is not an incident. API 5xx are reported, 4xx are not.
Nothing a seller submitted and no credential or secret is in anything sent.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.db import SessionFactory
from service.domain.queues import SCAN_ASSET
from service.models import Job, JobState
from service.settings import Settings
from tests.scanning.clamd_process import RunningClamd
from tests.support.flows import BUYER, DELIVERY_NOTE, SELLER, funded_rift, submit
from tests.support.processes import wait_for

from .flaky_clamd import FAIL_EVERY_CONNECTION, FlakyClamd
from .sentry_inbox import SentryInbox
from .stack import Stack, http, metric_sum

pytestmark = pytest.mark.slow

JOB_TIMEOUT_S = 30.0
EVENT_TIMEOUT_S = 10.0
#: How long to keep listening for an event that must not come.
QUIET_PERIOD_S = 1.0
LICENSE_KEY = "RIFTK-7Q2XP-L9M44-ZKW3R-SECRETKEY"
FILE_CONTENT = (
    b"Shipping manifest 55-A: four crates, serials WX-1001..WX-1004, signed by M. Ortiz.\n"
)
PROOF_TEXT = DELIVERY_NOTE + "Private note for the buyer: gate code 4412.\n"


def scan_job(sessions: SessionFactory, asset_id: str) -> Job:
    with sessions() as session:
        job = session.scalars(
            select(Job).where(Job.actor_name == SCAN_ASSET.actor_name, Job.subject_id == asset_id)
        ).one()
        return job


def wait_for_state(sessions: SessionFactory, asset_id: str, states: set[JobState]) -> Job:
    wait_for(
        lambda: scan_job(sessions, asset_id).state in states, JOB_TIMEOUT_S, f"scan job {states}"
    )
    return scan_job(sessions, asset_id)


def assert_nothing_secret_in(inbox: SentryInbox, settings: Settings, *secrets: str) -> None:
    raw = inbox.raw()
    assert raw, "no envelope arrived at all"
    for secret in (*secrets, settings.jwt_secret, settings.license_key_secret):
        assert secret.encode() not in raw, f"{secret[:12]}... was sent to Sentry"
    assert inbox.rejected == []


def test_only_a_finally_failed_job_is_reported_once_with_its_ids_and_no_secrets(
    stack: Stack,
    api_client: Any,
    auth_headers: Any,
    monitoring_settings: Settings,
    monitoring_sessions: SessionFactory,
    clamd: RunningClamd,
    sentry_inbox: SentryInbox,
) -> None:
    sessions = monitoring_sessions
    with FlakyClamd(clamd.port) as flaky:
        # Given a scan pool reporting to Sentry, behind a clamd connection that can fail
        settings = replace(monitoring_settings, clamd_address=f"tcp://127.0.0.1:{flaky.port}")
        pool = stack.pool([SCAN_ASSET.queue_name], settings=settings, SENTRY_DSN=sentry_inbox.dsn)
        stack.wait_ready(pool)

        # When a scan fails once and its retry succeeds
        flaky.fail_next(1)
        rift = funded_rift(api_client, auth_headers)
        note = ("note.txt", DELIVERY_NOTE.encode(), "text/plain")
        [repaired] = submit(api_client, auth_headers, rift["id"], files=[note]).json["asset_ids"]
        job = wait_for_state(sessions, repaired, {JobState.SUCCEEDED, JobState.DEAD})
        assert (job.state, job.attempts) == (JobState.SUCCEEDED, 2)

        # and another fails on every attempt, for a proof full of things to keep private
        flaky.fail_next(FAIL_EVERY_CONNECTION)
        rift = funded_rift(api_client, auth_headers)
        headers = auth_headers(SELLER)
        accepted = submit(
            api_client,
            auth_headers,
            rift["id"],
            fields={"license_key": LICENSE_KEY, "text": PROOF_TEXT},
            files=[("manifest.txt", FILE_CONTENT, "text/plain")],
            headers=headers,
        )
        assert accepted.status_code == 202, accepted.text
        doomed = accepted.json["asset_ids"][0]
        job = wait_for_state(sessions, doomed, {JobState.SUCCEEDED, JobState.DEAD})
        assert (job.state, job.attempts) == (JobState.DEAD, monitoring_settings.max_retries + 1)

        # Then exactly one event arrives, for the job that finally failed
        sentry_inbox.wait_for_events(1, EVENT_TIMEOUT_S)
        pool.process.stop()  # anything still queued in the SDK is flushed on the way out
        time.sleep(QUIET_PERIOD_S)
    events = sentry_inbox.events()
    assert len(events) == 1, [e.get("tags") for e in events]
    [event] = events
    assert event["tags"] == {
        "component": "worker",
        "job_id": job.id,
        "actor": SCAN_ASSET.actor_name,
        "queue": SCAN_ASSET.queue_name,
        "rift_id": rift["id"],
        "request_id": accepted.headers["X-Request-ID"],
    }
    assert event["exception"]["values"][-1]["type"] == "ScannerUnavailable"
    assert event["contexts"]["job"]["attempts"] == job.attempts
    # and nothing of the proof, the seller's token or the service's secrets is in it
    token = headers["Authorization"].removeprefix("Bearer ")
    assert_nothing_secret_in(
        sentry_inbox, monitoring_settings, LICENSE_KEY, token, FILE_CONTENT.decode(), PROOF_TEXT
    )


def test_an_api_server_error_is_reported_with_credentials_filtered_and_4xx_are_not(
    stack: Stack,
    monitoring_settings: Settings,
    auth_headers: Any,
    sentry_inbox: SentryInbox,
    tmp_path: Path,
) -> None:
    # Given the API reporting to Sentry, on a database that was never migrated
    unmigrated = replace(monitoring_settings, database_url=f"sqlite:///{tmp_path / 'empty.db'}")
    api = stack.api(
        workers=1,
        settings=unmigrated,
        metrics_dir=tmp_path / "prom-api",
        SENTRY_DSN=sentry_inbox.dsn,
    )
    stack.wait_ready(api)
    headers = {**auth_headers(BUYER), "Idempotency-Key": "idem-key-0b7e1f", "Cookie": "s=c00k1e"}

    # When a client error and a server error happen
    assert http("GET", f"{api.url}/api/rifts/some-rift")[0] == 401
    status, _ = http("GET", f"{api.url}/api/rifts/some-rift", headers=headers)
    assert status == 500

    # Then one event arrives: the server error, from the Falcon integration
    sentry_inbox.wait_for_events(1, EVENT_TIMEOUT_S)
    time.sleep(QUIET_PERIOD_S)
    [event] = sentry_inbox.events()
    assert event["tags"]["component"] == "api"
    assert event["exception"]["values"][-1]["type"] == "OperationalError"
    assert event["exception"]["values"][-1]["mechanism"]["type"] == "falcon"
    assert event["request"]["url"].endswith("/api/rifts/some-rift")
    sent_headers = {k.lower(): v for k, v in event["request"]["headers"].items()}
    assert sent_headers["authorization"] == "[Filtered]"
    assert sent_headers.get("cookie", "[Filtered]") == "[Filtered]"
    assert sent_headers["idempotency-key"] == "[Filtered]"
    # and no credential is anywhere in what was sent
    token = headers["Authorization"].removeprefix("Bearer ")
    assert_nothing_secret_in(sentry_inbox, monitoring_settings, token, "c00k1e", "idem-key-0b7e1f")
    # and the API's metrics count the error under its route
    exposition = api.scrape()
    assert (
        metric_sum(
            exposition, "rift_http_requests_total", route="/api/rifts/{rift_id}", status="500"
        )
        == 1
    )
