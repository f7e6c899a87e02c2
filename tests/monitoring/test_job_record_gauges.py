"""The collector's job-record gauges: exact counts of unfinished jobs, none of finished ones."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry
from sqlalchemy import update

from actors.collector import JobRecordGauges
from service.db import SessionFactory, transaction
from service.domain.clock import new_id, utcnow
from service.domain.job_queries import IN_FLIGHT_STATES
from service.domain.queues import ACTOR_NAMES, CLEAN_UP_RIFT, SCAN_ASSET, VERIFY_PROOF, JobKind
from service.models import FINAL_JOB_STATES, Job, JobState


def add_job(sessions: SessionFactory, kind: JobKind, state: JobState) -> str:
    now = utcnow() - timedelta(seconds=1)
    with transaction(sessions) as session:
        job = Job(
            id=new_id(),
            actor_name=kind.actor_name,
            queue_name=kind.queue_name,
            subject_id=new_id(),
            state=state,
            attempts=0,
            progress=0,
            created_at=now,
            updated_at=now,
            dispatched_at=None if state is JobState.PENDING else now,
        )
        session.add(job)
    return job.id


def scrape(sessions: SessionFactory) -> dict[tuple[str, str], float]:
    registry = CollectorRegistry()
    registry.register(JobRecordGauges(sessions, utcnow))
    return {
        (sample.labels["state"], sample.labels["actor"]): sample.value
        for family in registry.collect()
        if family.name == "rift_jobs"
        for sample in family.samples
    }


def test_rift_jobs_counts_every_unfinished_job_and_no_finished_one(sessions) -> None:
    # Given unfinished jobs of every kind, and finished ones in every final state
    add_job(sessions, VERIFY_PROOF, JobState.PENDING)
    add_job(sessions, VERIFY_PROOF, JobState.QUEUED)
    running = [add_job(sessions, SCAN_ASSET, JobState.RUNNING) for _ in range(2)]
    add_job(sessions, CLEAN_UP_RIFT, JobState.RETRYING)
    for state in FINAL_JOB_STATES:
        for kind in (VERIFY_PROOF, SCAN_ASSET):
            add_job(sessions, kind, state)

    # When Prometheus scrapes
    gauges = scrape(sessions)

    # Then each unfinished (state, actor) has its exact count, zero where none waits,
    expected = {(state.value, actor): 0.0 for state in IN_FLIGHT_STATES for actor in ACTOR_NAMES}
    expected[("PENDING", VERIFY_PROOF.actor_name)] = 1
    expected[("QUEUED", VERIFY_PROOF.actor_name)] = 1
    expected[("RUNNING", SCAN_ASSET.actor_name)] = 2
    expected[("RETRYING", CLEAN_UP_RIFT.actor_name)] = 1
    # and no series counts finished records (their rates are counters: dramatiq_messages_total,
    # rift_job_final_failures_total)
    assert gauges == expected

    # When one of the running scans finishes, the next scrape counts one fewer
    with transaction(sessions) as session:
        session.execute(update(Job).where(Job.id == running[0]).values(state=JobState.SUCCEEDED))
    assert scrape(sessions)[("RUNNING", SCAN_ASSET.actor_name)] == 1
