"""One id follows a submission from the API to the worker: the request id of the HTTP request.

The API stores it on each job the request creates, the dispatcher (right away, or the relay
later) puts it on the message, and the worker binds it, with the job and rift ids, into
every log line of the job.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from actors.transport import connect_transport
from service.domain.clock import new_id, utcnow
from service.domain.jobs import relay_outbox
from service.domain.queues import SCAN_ASSET
from service.models import Job
from tests.support.api import api_test_client
from tests.support.flows import DELIVERY_NOTE, funded_rift, submit
from tests.support.processes import free_port, wait_for

pytestmark = pytest.mark.slow

NOTE = ("delivery-note.txt", DELIVERY_NOTE.encode(), "text/plain")
LOG_TIMEOUT_S = 30.0


def jobs_of(sessions: Any, rift_id: str) -> list[Job]:
    with sessions() as session:
        return list(session.scalars(select(Job).where(Job.rift_id == rift_id)))


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log lines of a process's output (Dramatiq prints a few plain ones first)."""
    lines = []
    for raw in text.splitlines():
        try:
            parsed = json.loads(raw)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            lines.append(parsed)
    return lines


def test_every_job_a_submission_creates_keeps_the_request_id_it_was_sent_with(
    client: Any, auth: Any, sessions: Any
) -> None:
    request_id = f"req-{new_id()}"
    rift = funded_rift(client, auth)

    accepted = submit(client, auth, rift["id"], files=[NOTE], headers={"X-Request-ID": request_id})

    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["X-Request-ID"] == request_id
    jobs = jobs_of(sessions, rift["id"])
    assert len(jobs) == 2, "one verification job and one scan job"
    assert {job.request_id for job in jobs} == {request_id}


def test_a_failing_job_logs_its_traceback_with_the_ids_of_the_submission_that_created_it(
    settings: Any, sessions: Any, api_context: Any, auth: Any, start_worker: Any
) -> None:
    # Given a submission made while the broker was down: its jobs wait in the outbox
    dead = replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    broker_down = api_test_client(
        replace(api_context, dispatcher=connect_transport(dead, sessions).dispatcher)
    )
    request_id = f"req-{new_id()}"
    rift = funded_rift(broker_down, auth)
    accepted = submit(
        broker_down, auth, rift["id"], files=[NOTE], headers={"X-Request-ID": request_id}
    )
    assert accepted.status_code == 202, accepted.text
    [scan_job] = [j for j in jobs_of(sessions, rift["id"]) if j.actor_name == SCAN_ASSET.actor_name]
    assert scan_job.dispatched_at is None

    # When the relay sends them later, to a scan worker logging JSON whose clamd is gone
    assert relay_outbox(sessions, api_context.dispatcher, utcnow, timedelta(0)) == 2
    no_clamd = replace(settings, clamd_address=f"tcp://127.0.0.1:{free_port()}")
    worker = start_worker([SCAN_ASSET.queue_name], settings_override=no_clamd, LOG_FORMAT="json")

    def failure_lines() -> list[dict[str, Any]]:
        return [
            line
            for line in json_lines(worker.output())
            if line.get("job_id") == scan_job.id and "exception" in line
        ]

    wait_for(failure_lines, LOG_TIMEOUT_S, "a JSON log line of the failed scan attempt")

    # Then that line carries the traceback, the job id, the rift id and the request id
    line = failure_lines()[0]
    assert line["request_id"] == request_id
    assert line["rift_id"] == rift["id"]
    assert line["actor"] == SCAN_ASSET.actor_name
    assert line["exception"].startswith("Traceback (most recent call last)")
    assert "ScannerUnavailable" in line["exception"]
