"""Workers killed, restarted and poisoned under load: no proof lost, none decided twice.

Budget per scenario: 100 submissions (a file and a tracking number each), about 30-60 s.
"""

from __future__ import annotations

import time

import pytest

from service.domain.queues import SCAN_ASSET, VERIFY_PROOF
from service.models import Job, JobState
from tests.chaos.system import MIN_SUBMISSIONS, ChaosSystem
from tests.support.processes import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

# Heartbeat timeout (2 s in the test settings) + the scheduler's 1 s redelivery pass + a
# new pool's start: the killed job runs again within this.
REDELIVERY_BOUND_S = 20.0
# A slow scanner keeps scans RUNNING long enough to be caught mid-flight (and the scan
# pool, 2 threads, just ahead of the submissions: no backlog hides the redelivery).
SCAN_DELAY_S = 0.3


def running_job(system: ChaosSystem, actor_name: str, timeout_s: float = 30.0) -> Job:
    found: list[Job] = []

    def some_running() -> bool:
        found[:] = [j for j in system.jobs(JobState.RUNNING) if j.actor_name == actor_name]
        return bool(found)

    wait_for(some_running, timeout_s, f"a RUNNING {actor_name} job")
    return found[0]


def job(system: ChaosSystem, job_id: str) -> Job:
    with system.sessions() as session:
        return session.get_one(Job, job_id)


def assert_promise_kept(system: ChaosSystem, figures) -> None:
    system.wait_for_verdicts()
    system.count(figures)
    assert figures.submitted >= MIN_SUBMISSIONS
    assert figures.accepted + figures.unavailable_503 == figures.submitted
    assert figures.lost == 0, f"{figures.line()}\n{system.logs()}"
    assert figures.duplicates == 0, figures.line()
    assert system.clean_without_a_scan() == 0


@pytest.mark.parametrize("queue", ["scan", "verification"])
def test_a_worker_killed_mid_job_has_its_job_running_again_within_seconds(
    chaos_system, figures, queue
):
    system = chaos_system()
    system.clamd_proxy.delay_s = SCAN_DELAY_S
    measured = figures(f"SIGKILL {queue} worker while RUNNING")
    actor = SCAN_ASSET.actor_name if queue == "scan" else VERIFY_PROOF.actor_name
    system.fund_rifts(MIN_SUBMISSIONS)
    victims: list[tuple[str, float]] = []

    def kill_mid_job(i: int) -> None:
        if i != MIN_SUBMISSIONS // 3:
            return
        # Given a job whose record says RUNNING
        victim = running_job(system, actor)
        # When its worker pool is killed outright, and comes back as supervisord restarts it
        system.kill_pool(queue)
        victims.append((victim.id, time.monotonic()))
        system.start_pool(queue)

    system.submit_all(measured, during=kill_mid_job)

    # Then the job that was running runs again, on a later attempt, within the bound
    victim_id, killed_at = victims[0]

    def started_again() -> bool:
        return job(system, victim_id).attempts >= 2

    wait_for(started_again, REDELIVERY_BOUND_S * 4, f"job {victim_id} to start again")
    measured.recovery_s = time.monotonic() - killed_at
    assert_promise_kept(system, measured)
    done = job(system, victim_id)
    measured.notes["victim_attempts"] = done.attempts
    assert done.state is JobState.SUCCEEDED
    assert measured.recovery_s < REDELIVERY_BOUND_S, measured.line()


def test_a_pool_stopped_gracefully_lets_its_running_job_finish_on_attempt_one(
    chaos_system, figures
):
    system = chaos_system()
    system.clamd_proxy.delay_s = SCAN_DELAY_S
    measured = figures("graceful scan pool restart while RUNNING")
    system.fund_rifts(MIN_SUBMISSIONS)
    caught: list[str] = []
    statuses: list[int] = []

    def restart_mid_job(i: int) -> None:
        if i != MIN_SUBMISSIONS // 3:
            return
        caught.extend(j.id for j in system.jobs(JobState.RUNNING) if j.queue_name == "scan")
        if not caught:
            caught.append(running_job(system, SCAN_ASSET.actor_name).id)
        # One SIGTERM to the pool's main process, as supervisord (stopasgroup=false) sends.
        statuses.append(system.stop_pool("scan"))
        system.start_pool("scan")

    system.submit_all(measured, during=restart_mid_job)
    assert_promise_kept(system, measured)
    # The pool exited cleanly, and every job running at the signal finished on attempt 1.
    assert statuses == [0]
    for job_id in caught:
        done = job(system, job_id)
        assert (done.state, done.attempts) == (JobState.SUCCEEDED, 1), job_id
    measured.notes["running_at_signal"] = len(caught)


def test_graceful_restarts_of_every_pool_under_load_lose_nothing(chaos_system, figures):
    system = chaos_system()
    measured = figures("graceful restart of every pool under load")
    system.fund_rifts(MIN_SUBMISSIONS)
    statuses: list[int] = []

    def restart_pools(i: int) -> None:
        if i not in (MIN_SUBMISSIONS // 4, MIN_SUBMISSIONS // 2, 3 * MIN_SUBMISSIONS // 4):
            return
        for queue in ("verification", "scan"):
            statuses.append(system.stop_pool(queue))
            system.start_pool(queue)

    system.submit_all(measured, during=restart_pools)
    assert_promise_kept(system, measured)
    assert statuses == [0] * 6
    redelivered = [j for j in system.jobs(JobState.SUCCEEDED) if j.attempts > 1]
    measured.notes["jobs_on_a_later_attempt"] = len(redelivered)
