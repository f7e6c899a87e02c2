"""Counts stay exact when several processes serve: gunicorn workers and Dramatiq processes.

Each process writes its own multiprocess file and /metrics sums them; the tests check the
sums against what was sent, that more than one process did the work, and that a worker
replaced by gunicorn neither loses its counts nor leaves its in-flight gauge behind.
"""

from __future__ import annotations

import os
import signal
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import select

from service.db import SessionFactory
from service.domain.queues import VERIFY_PROOF
from service.models import Job, JobState
from tests.support.flows import DELIVERY_NOTE, funded_rift, submit
from tests.support.processes import wait_for

from .stack import Stack, child_pids, http, metric_sum, per_process_values

pytestmark = pytest.mark.slow

API_REQUESTS = 40
CONCURRENT_CLIENTS = 8
VERIFICATIONS = 10
ROUTE = "/api/rifts/{rift_id}"


def booted_workers(master_pid: int, metrics_dir: Path) -> int:
    """Count gunicorn workers that have loaded the app (its metrics files exist)."""
    return sum((metrics_dir / f"counter_{pid}.db").exists() for pid in child_pids(master_pid))


def test_api_request_counts_summed_over_gunicorn_workers_equal_requests_sent(
    stack: Stack, tmp_path: Path
) -> None:
    # Given gunicorn with two workers and the metrics directory its config defaults to,
    # each worker taking one connection at a time so that concurrent requests reach both
    api = stack.api(workers=2, threads=1, cwd=tmp_path, GUNICORN_CMD_ARGS="--worker-connections=1")
    stack.wait_ready(api)
    assert api.metrics_dir == tmp_path / "var" / "prometheus" / "api"
    wait_for(lambda: booted_workers(api.process.pid, api.metrics_dir) == 2, 15.0, "two workers")

    # When requests arrive concurrently, each for another rift (401: no token)
    def get(n: int) -> int:
        return http("GET", f"{api.url}/api/rifts/rift-{n}")[0]

    with ThreadPoolExecutor(CONCURRENT_CLIENTS) as clients:
        statuses = list(clients.map(get, range(API_REQUESTS)))
    assert statuses == [401] * API_REQUESTS

    # Then /metrics counts every one of them once, under the route template
    exposition = api.scrape()
    assert metric_sum(exposition, "rift_http_requests_total", route=ROUTE) == API_REQUESTS
    assert metric_sum(exposition, "rift_http_requests_total", route=ROUTE, status="401") == (
        API_REQUESTS
    )
    assert metric_sum(exposition, "rift_http_request_duration_seconds_count", route=ROUTE) == (
        API_REQUESTS
    )
    assert metric_sum(exposition, "rift_http_requests_in_flight", route=ROUTE) == 0
    # and both workers served some of them
    served = per_process_values(api.metrics_dir, "counter", "rift_http_requests_total", route=ROUTE)
    assert sorted(served) == sorted(child_pids(api.process.pid))
    assert all(count > 0 for count in served.values()), served

    # When gunicorn replaces a worker
    retired = child_pids(api.process.pid)[0]
    os.kill(retired, signal.SIGTERM)
    wait_for(
        lambda: (
            retired not in child_pids(api.process.pid)
            and booted_workers(api.process.pid, api.metrics_dir) == 2
        ),
        15.0,
        "gunicorn to replace the worker",
    )
    # Then its counts are still in the sums, and its live gauge file is gone
    exposition = api.scrape()
    assert metric_sum(exposition, "rift_http_requests_total", route=ROUTE) == API_REQUESTS
    assert not (api.metrics_dir / f"gauge_livesum_{retired}.db").exists()
    assert metric_sum(exposition, "rift_http_requests_in_flight", route=ROUTE) == 0


def test_worker_counts_summed_over_pool_processes_equal_jobs_processed(
    stack: Stack, api_client, auth_headers, monitoring_sessions: SessionFactory
) -> None:
    # Given a verification pool of two processes, one thread each
    pool = stack.pool([VERIFY_PROOF.queue_name], processes=2, threads=1)
    stack.wait_ready(pool)

    # When text-only proofs are submitted (one verification job each, no scan)
    for n in range(VERIFICATIONS):
        rift = funded_rift(api_client, auth_headers, item_type="DIGITAL_GOODS")
        note = f"{DELIVERY_NOTE}Reference {n}: {uuid.uuid4()}.\n"
        result = submit(api_client, auth_headers, rift["id"], fields={"text": note})
        assert result.status_code == 202, result.text

    def succeeded() -> list[Job]:
        with monitoring_sessions() as session:
            return list(session.scalars(select(Job).where(Job.state == JobState.SUCCEEDED)))

    wait_for(lambda: len(succeeded()) == VERIFICATIONS, 30.0, "every verification job")

    # Then the pool's exposition sums Dramatiq's counts and the project's to the jobs run
    exposition = pool.scrape()
    actor = {"actor_name": VERIFY_PROOF.actor_name}
    assert metric_sum(exposition, "dramatiq_messages_total", **actor) == VERIFICATIONS
    assert metric_sum(exposition, "dramatiq_message_errors_total", **actor) == 0
    assert metric_sum(exposition, "dramatiq_message_duration_milliseconds_count", **actor) == (
        VERIFICATIONS
    )
    assert metric_sum(exposition, "dramatiq_messages_inprogress", **actor) == 0
    assert metric_sum(exposition, "rift_proof_verdicts_total") == VERIFICATIONS
    assert metric_sum(exposition, "rift_time_to_verdict_seconds_count") == VERIFICATIONS
    # and both processes did some of the work
    assert pool.metrics_dir is not None
    done = per_process_values(pool.metrics_dir, "counter", "dramatiq_messages_total", **actor)
    assert len(done) == 2 and all(count > 0 for count in done.values()), done
