"""Idle workers wake when a message arrives instead of sleeping out their back-off."""

from __future__ import annotations

import statistics
import time

import pytest

from actors.wakeful import WAKE_TOKENS_MAX, wake_key
from service.models import Job
from tests.support.flows import funded_rift, submit
from tests.support.processes import wait_for

pytestmark = pytest.mark.slow

# With this timeout an idle consumer sleeps 1.5-3 s between polls; a worker that slept
# out its back-off would leave most jobs waiting for a large part of that.
WORKER_TIMEOUT_MS = 3_000
WARM_IDLE_S = 6.0
SUBMISSIONS = 5
GAP_S = 1.0
PICKUP_BOUND_S = 0.3


def test_an_idle_worker_takes_each_new_job_at_once(client, auth, sessions, start_worker):
    start_worker(["verification"], dramatiq_worker_timeout=str(WORKER_TIMEOUT_MS))
    rifts = [funded_rift(client, auth) for _ in range(SUBMISSIONS)]
    time.sleep(WARM_IDLE_S)  # the consumer's back-off has grown to its cap by now

    waits = []
    for rift in rifts:
        job_id = submit(
            client, auth, rift["id"], fields={"tracking_number": "1Z999AA10123456784"}
        ).json["verification_job_id"]

        def started(job_id: str = job_id) -> bool:
            with sessions() as session:
                return session.get(Job, job_id).started_at is not None

        wait_for(started, 2 * WORKER_TIMEOUT_MS / 1000, "the worker to start the job")
        with sessions() as session:
            job = session.get(Job, job_id)
            waits.append((job.started_at - job.dispatched_at).total_seconds())
        time.sleep(GAP_S)
    assert statistics.median(waits) < PICKUP_BOUND_S, f"waits for an idle worker: {waits}"


def test_wake_tokens_stay_bounded_when_nobody_listens(api_context, redis_conn):
    from service.domain.clock import new_id, utcnow
    from service.domain.jobs import dispatch_jobs, new_job
    from service.domain.queues import CLEAN_UP_RIFT

    with api_context.sessions() as session, session.begin():
        jobs = [
            new_job(session, CLEAN_UP_RIFT, subject_id=new_id(), now=utcnow(), ids=new_id)
            for _ in range(WAKE_TOKENS_MAX * 3)
        ]
    dispatch_jobs(api_context.sessions, api_context.dispatcher, jobs, utcnow)
    assert redis_conn.llen("dramatiq:cleanup") == WAKE_TOKENS_MAX * 3
    assert redis_conn.llen(wake_key("cleanup")) == WAKE_TOKENS_MAX
