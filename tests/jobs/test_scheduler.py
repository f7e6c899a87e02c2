"""The scheduler process: the outbox relay and the retention sweep, run for real."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import falcon.testing
import pytest

from actors.broker import build_broker, redis_client
from actors.dispatch import DramatiqDispatcher
from actors.queue_stats import RedisQueueStats
from service.api.app import create_app
from service.api.metrics import ApiMetrics
from service.blobs import LocalBlobStore
from service.domain.clock import utcnow
from service.domain.retention import ORPHAN_GRACE
from service.settings import Settings
from tests.conftest import settings_env
from tests.jobs.conftest import age, blob_files, get_job, wait_for_job
from tests.support.flows import DELIVERY_NOTE, funded_rift, submit
from tests.support.processes import ManagedProcess, free_port, wait_for

pytestmark = pytest.mark.slow


def test_a_job_submitted_while_the_broker_was_down_is_relayed_by_the_scheduler_and_finished(
    api_context, auth, settings: Settings, start_worker, tmp_path: Path
):
    dead = replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    down = falcon.testing.TestClient(
        create_app(
            replace(api_context, dispatcher=DramatiqDispatcher(build_broker(dead))),
            metrics=ApiMetrics(),
            queue_stats=RedisQueueStats(redis_client(settings), []),
        )
    )
    rift = funded_rift(down, auth)
    accepted = submit(down, auth, rift["id"], fields={"text": DELIVERY_NOTE})
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json["verification_job_id"]
    pending = get_job(down, auth, job_id)
    assert (pending["state"], pending["dispatched_at"]) == ("PENDING", None)
    # An orphaned blob the scheduler's first retention sweep should find.
    store = LocalBlobStore(settings.blob_dir, settings.quarantine_dir)
    orphan = store.write([b"left over " * 20], max_bytes=1024, label="orphan").key
    age(settings.blob_dir / orphan, utcnow() - 2 * ORPHAN_GRACE)
    start_worker(["verification"])

    scheduler = ManagedProcess(
        [sys.executable, "-m", "actors.scheduler"],
        settings_env(settings, COLLECTOR_PORT=str(free_port())),
        tmp_path / "scheduler.log",
    ).start()
    try:
        job = wait_for_job(down, auth, job_id)
        wait_for(lambda: orphan not in blob_files(settings.blob_dir), 10, "the retention sweep")
    finally:
        scheduler.stop()
    assert job["state"] == "SUCCEEDED", scheduler.output()
    assert job["dispatched_at"] is not None
    assert job["attempts"] == 1
    assert job["result"]["verdict"] is not None
