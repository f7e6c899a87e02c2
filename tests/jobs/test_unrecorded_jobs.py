"""A message whose RUNNING write fails is retried, never run without a record of it."""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries
from sqlalchemy.pool import NullPool

from actors.job_records import JobRecords
from actors.tracking import JobTracking
from service.db import create_db_engine, create_session_factory
from service.domain.clock import utcnow
from tests.support.processes import free_port

RETRIES = 2


def test_a_job_whose_running_write_fails_is_retried_and_never_runs_unrecorded():
    # Given job records on a database that refuses every connection (down, restarting)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/rift"
    records = JobRecords(create_db_engine(url, single_statements=True, poolclass=NullPool))
    sessions = create_session_factory(create_db_engine(url))
    broker = StubBroker(middleware=[JobTracking(records, sessions, utcnow)])
    # JobTracking sits before Retries, as in actors/broker.py.
    broker.add_middleware(Retries(max_retries=RETRIES, min_backoff=10, max_backoff=20))
    ran: list[str] = []

    @dramatiq.actor(broker=broker, queue_name="verification")
    def verify_proof(proof_id: str) -> None:
        ran.append(proof_id)

    worker = dramatiq.Worker(broker, worker_timeout=50)
    worker.start()
    try:
        # When its message is delivered, and delivered again by each retry
        verify_proof.send("proof-1")
        broker.join("verification", fail_fast=False)
        worker.join()
    finally:
        worker.stop()

    # Then the actor never ran, and the message was retried, then dead-lettered
    assert ran == []
    assert len(broker.dead_letters) == 1
    assert broker.dead_letters[0].options["retries"] == RETRIES + 1
