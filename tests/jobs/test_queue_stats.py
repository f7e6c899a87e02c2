"""GET /api/admin/queues and readiness tell the truth about the broker, on Redis and RabbitMQ.

Redis's figures come from Dramatiq's keys; RabbitMQ's from its own counts (ready messages,
dead letters, consumers) and the job records (retries waiting, the oldest queued job).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from actors.transport import connect_transport
from service.domain.queues import SCAN_ASSET, VERIFY_PROOF
from service.domain.users import Role
from tests.jobs.conftest import JOB_TIMEOUT_S, scan_job_ids, wait_for_job
from tests.support.brokers import BROKERS, RABBITMQ_PASSWORD, RABBITMQ_USER
from tests.support.flows import DELIVERY_NOTE, OPERATOR, funded_rift, submit
from tests.support.processes import free_port, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("broker", BROKERS, indirect=True)]

NOTE = ("delivery.txt", DELIVERY_NOTE.encode(), "text/plain")
# Long enough that the test reliably sees the job between its attempts.
RETRY_BACKOFF_MS = 4_000


def queues(client: Any, auth: Any) -> dict[str, dict[str, Any]]:
    result = client.simulate_get("/api/admin/queues", headers=auth(OPERATOR, Role.ADMIN))
    assert result.status_code == 200, result.text
    return {q["queue"]: q for q in result.json["queues"]}


def test_waiting_jobs_are_counted_with_their_age_and_a_worker_is_seen_consuming(
    client: Any, auth: Any, start_worker: Any
) -> None:
    # Given a submission and no worker yet: one verification and one scan job wait
    rift = funded_rift(client, auth)
    assert submit(client, auth, rift["id"], files=[NOTE]).status_code == 202
    time.sleep(1.0)

    waiting = queues(client, auth)

    assert {name: q["depth"] for name, q in waiting.items()} == {
        "verification": 1,
        "scan": 1,
        "cleanup": 0,
    }
    assert waiting["verification"]["oldest_age_s"] >= 1.0
    assert waiting["cleanup"]["oldest_age_s"] == 0.0
    assert all(q["workers_alive"] == 0 for q in waiting.values())

    # When a verification worker starts, it is seen consuming, and its queue drains
    start_worker([VERIFY_PROOF.queue_name])

    def drained() -> bool:
        verification = queues(client, auth)["verification"]
        return verification["depth"] == 0 and verification["oldest_age_s"] == 0.0

    wait_for(drained, JOB_TIMEOUT_S, "the verification queue to drain")
    now = queues(client, auth)
    assert now["verification"]["workers_alive"] == 1
    assert (now["scan"]["depth"], now["scan"]["workers_alive"]) == (1, 0)


def test_a_retry_waiting_for_its_backoff_is_delayed_and_a_job_out_of_retries_is_dead_lettered(
    client: Any, auth: Any, settings: Any, sessions: Any, start_worker: Any
) -> None:
    # Given a scan worker whose clamd is gone, retrying twice with a long back-off
    no_clamd = replace(
        settings,
        clamd_address=f"tcp://127.0.0.1:{free_port()}",
        max_retries=1,
        min_backoff_ms=RETRY_BACKOFF_MS,
        max_backoff_ms=RETRY_BACKOFF_MS,
    )
    start_worker([SCAN_ASSET.queue_name], settings_override=no_clamd)
    rift = funded_rift(client, auth)
    [asset_id] = submit(client, auth, rift["id"], files=[NOTE]).json["asset_ids"]
    job_id = scan_job_ids(sessions, [asset_id])[asset_id]

    # When the first attempt fails, the retry waits: delayed, not waiting on the queue
    wait_for_job(client, auth, job_id, {"RETRYING"})
    scan = queues(client, auth)["scan"]
    assert (scan["delayed"], scan["depth"], scan["dead_letters"]) == (1, 0, 0)

    # Then, out of retries, the message is on the dead-letter queue
    assert wait_for_job(client, auth, job_id)["state"] == "DEAD"
    wait_for(
        lambda: queues(client, auth)["scan"]["dead_letters"] == 1,
        JOB_TIMEOUT_S,
        "the dead letter to be counted",
    )
    assert queues(client, auth)["scan"]["delayed"] == 0


def test_readiness_says_whether_the_broker_answers(
    client: Any, broker: str, settings: Any, sessions: Any
) -> None:
    ready = client.simulate_get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json["checks"]["broker"] == "ok"

    port = free_port()
    if broker == "rabbitmq":
        dead = replace(
            settings, broker_url=f"amqp://{RABBITMQ_USER}:{RABBITMQ_PASSWORD}@127.0.0.1:{port}/"
        )
    else:
        dead = replace(settings, redis_url=f"redis://127.0.0.1:{port}/0")
    transport = connect_transport(dead, sessions)
    assert transport.probe.ping() is False
    transport.close()
