"""The reconciler: lost jobs are sent again under their id; poison jobs end DEAD once."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from actors.dispatch import DramatiqDispatcher
from actors.transport import build_broker
from service.api.views import job_view
from service.db import transaction
from service.domain.clock import new_id, utcnow
from service.domain.errors import JobNotRetryable
from service.domain.final_failures import CompensationServices, compensate_final_failure
from service.domain.jobs import retry_job
from service.domain.queues import SCAN_ASSET, VERIFY_PROOF, job_kind
from service.domain.reconciler import ReconcileLimits, reconcile
from service.domain.verdicts import ReleasePolicy, VerdictRules
from service.models import Asset, Job, JobState, ScanStatus
from tests.support.flows import DELIVERY_NOTE, funded_rift, submit

NOTE = ("delivery.txt", DELIVERY_NOTE.encode(), "text/plain")

LIMITS = ReconcileLimits(
    queued_after=timedelta(seconds=30),
    retry_margin=timedelta(seconds=30),
    running_margin=timedelta(seconds=30),
    max_retries=3,
    max_backoff=timedelta(seconds=1),
)


def job_record(sessions, state: JobState, *, age_s: float, attempts: int = 0) -> str:
    then = utcnow() - timedelta(seconds=age_s)
    with transaction(sessions) as session:
        job = Job(
            id=new_id(),
            actor_name=VERIFY_PROOF.actor_name,
            queue_name=VERIFY_PROOF.queue_name,
            subject_id=new_id(),
            state=state,
            attempts=attempts,
            progress=0,
            created_at=then,
            updated_at=then,
            dispatched_at=then,
        )
        session.add(job)
    return job.id


def read(sessions, job_id: str) -> Job:
    with sessions() as session:
        return session.get_one(Job, job_id)


@pytest.fixture
def dispatcher(settings, redis_conn):
    return DramatiqDispatcher(build_broker(settings))


def queued_message_ids(redis_conn) -> set[str]:
    return {
        json.loads(raw)["message_id"]
        for raw in redis_conn.hvals(f"dramatiq:{VERIFY_PROOF.queue_name}.msgs")
    }


def test_jobs_waiting_past_their_kinds_limit_are_sent_again_under_the_same_id(
    sessions, dispatcher, redis_conn
):
    # Given jobs the broker lost (Redis restarted empty), and jobs that are fine
    lost_queued = job_record(sessions, JobState.QUEUED, age_s=60)
    lost_retrying = job_record(sessions, JobState.RETRYING, age_s=60, attempts=1)
    lost_running = job_record(sessions, JobState.RUNNING, age_s=3600, attempts=1)
    fresh = job_record(sessions, JobState.QUEUED, age_s=1)
    running_in_time = job_record(sessions, JobState.RUNNING, age_s=60, attempts=1)
    finished = job_record(sessions, JobState.SUCCEEDED, age_s=3600, attempts=1)

    # When the reconciler runs
    done = reconcile(sessions, dispatcher, utcnow, LIMITS, on_final_failure=lambda job: None)

    # Then exactly the lost ones are back in Redis, under their own ids, and say QUEUED
    assert set(done.redispatched) == {lost_queued, lost_retrying, lost_running}
    assert queued_message_ids(redis_conn) == {lost_queued, lost_retrying, lost_running}
    for job_id in done.redispatched:
        job = read(sessions, job_id)
        assert job.state is JobState.QUEUED
        assert "re-dispatched" in (job.last_error or "")
        # and the job's status says so
        assert job_view(job)["waiting_for_redelivery"] is True
    assert job_view(read(sessions, fresh))["waiting_for_redelivery"] is False
    # And nothing else moved: no finished job ever goes back
    assert read(sessions, fresh).state is JobState.QUEUED
    assert read(sessions, running_in_time).state is JobState.RUNNING
    assert read(sessions, finished).state is JobState.SUCCEEDED

    # When it runs again at once, nothing is sent twice (the records were just touched)
    again = reconcile(sessions, dispatcher, utcnow, LIMITS, on_final_failure=lambda job: None)
    assert again.redispatched == []


def test_a_job_started_more_times_than_its_kind_allows_ends_dead_and_is_compensated_once(
    sessions, dispatcher, redis_conn
):
    allowed = LIMITS.allowed_deliveries(VERIFY_PROOF)
    poison = job_record(sessions, JobState.RUNNING, age_s=1, attempts=allowed + 1)
    within = job_record(sessions, JobState.RUNNING, age_s=1, attempts=allowed)
    compensated: list[str] = []

    for _ in range(2):
        reconcile(sessions, dispatcher, utcnow, LIMITS, lambda job: compensated.append(job.id))

    assert compensated == [poison]
    job = read(sessions, poison)
    assert job.state is JobState.DEAD
    assert job.finished_at is not None
    assert f"started {allowed + 1} times" in (job.last_error or "")
    assert read(sessions, within).state is JobState.RUNNING


def test_a_final_failure_whose_compensation_was_missed_is_compensated_on_the_next_pass(
    client, auth, settings, sessions, dispatcher
):
    # Given a scan job that ended DEAD while its file stayed PENDING (give_up_scan failed)
    rift = funded_rift(client, auth)
    submitted = submit(client, auth, rift["id"], files=[NOTE])
    assert submitted.status_code == 202, submitted.text
    with transaction(sessions) as session:
        scan_job = session.scalars(
            select(Job).where(Job.actor_name == SCAN_ASSET.actor_name, Job.rift_id == rift["id"])
        ).one()
        scan_job.state = JobState.DEAD
        scan_job.last_error = "ScannerUnavailable: clamd refused the connection"
    services = CompensationServices(
        sessions,
        VerdictRules(thresholds=settings.thresholds(), release=ReleasePolicy()),
        utcnow,
        new_id,
    )

    def compensate(job: Job) -> None:
        compensate_final_failure(job_kind(job.actor_name), services, job.subject_id, job.last_error)

    # When the reconciler runs twice
    first = reconcile(sessions, dispatcher, utcnow, LIMITS, compensate)
    second = reconcile(sessions, dispatcher, utcnow, LIMITS, compensate)

    # Then the file is ERROR (never left PENDING), compensated on the first pass only
    assert first.compensated == [scan_job.id]
    assert second.compensated == []
    with sessions() as session:
        asset = session.get_one(Asset, scan_job.subject_id)
        assert asset.scan_status is ScanStatus.ERROR
        assert "clamd refused" in (asset.scan_signature or "")


def redis_backlog(redis_conn):
    def backlog(queue: str) -> int:
        return int(redis_conn.hlen(f"dramatiq:{queue}.msgs")) + int(
            redis_conn.hlen(f"dramatiq:{queue}.DQ.msgs")
        )

    return backlog


def test_a_backlog_the_broker_still_holds_is_not_sent_again_but_a_lost_one_is(
    sessions, dispatcher, redis_conn
):
    # Given overdue QUEUED jobs whose messages still wait in Redis (a backlog, not a loss)
    waiting = [job_record(sessions, JobState.QUEUED, age_s=60) for _ in range(3)]
    with sessions() as session:
        dispatcher.dispatch_many([session.get_one(Job, job_id) for job_id in waiting])
    backlog = redis_backlog(redis_conn)

    # When the reconciler runs, nothing is sent twice
    quiet = reconcile(sessions, dispatcher, utcnow, LIMITS, lambda job: None, backlog=backlog)
    assert quiet.redispatched == []
    assert len(queued_message_ids(redis_conn)) == 3

    # When Redis forgets them (restarted without its append-only file)
    redis_conn.flushdb()
    lost = reconcile(sessions, dispatcher, utcnow, LIMITS, lambda job: None, backlog=backlog)

    # Then every one is sent again under its own id
    assert set(lost.redispatched) == set(waiting)
    assert queued_message_ids(redis_conn) == set(waiting)


def test_operators_can_retry_a_job_the_broker_lost_but_not_one_that_is_only_waiting(sessions):
    # Given a job QUEUED for an hour (Redis restarted empty) and one running for a second
    lost = job_record(sessions, JobState.QUEUED, age_s=3600)
    fresh = job_record(sessions, JobState.RUNNING, age_s=1, attempts=1)

    # When an operator retries both
    with transaction(sessions) as session:
        retry_job(session, lost, utcnow())
    refused = pytest.raises(JobNotRetryable, match=r"only FAILED or DEAD .* time limit")
    with refused, transaction(sessions) as session:
        retry_job(session, fresh, utcnow())

    # Then the lost one is back in the outbox under its id, the other one untouched
    again = read(sessions, lost)
    assert (again.state, again.dispatched_at) == (JobState.PENDING, None)
    assert read(sessions, fresh).state is JobState.RUNNING
