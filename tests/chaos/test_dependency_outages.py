"""The database and the scanner go away under load, then come back.

Budget: PostgreSQL stopped 15 s and clamd down 30 s (the outages the issue names), 100
paced submissions each, about a minute per scenario; PostgreSQL down 6 s under 200
waiting messages, about 30 s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from service.models import Asset, JobState, ScanStatus
from tests.chaos.servers import PostgresServer
from tests.chaos.system import MIN_SUBMISSIONS, ChaosSystem
from tests.chaos.test_worker_faults import assert_promise_kept
from tests.support.databases import migrate

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

POSTGRES_DOWN_S = 15.0
CLAMD_DOWN_S = 30.0
# Paced so that submissions go on through the whole outage.
POSTGRES_PACE_S = 0.35
CLAMD_PACE_S = 0.25
VERDICTS_AFTER_S = 90.0
# Many times the test settings' retry schedule (3 retries, 100 ms doubling to 500 ms):
# every message is delivered again and again while the database is down.
WAITING_OUTAGE_S = 6.0
# A waiting job tries again at most max_backoff (500 ms here) apart; the rest is the
# pools working through 100 proofs. Far below the reconciler's limits for a lost job.
WAITING_RECOVERY_S = 30.0


def outage(
    down: Callable[[], object], up: Callable[[], object], seconds: float
) -> tuple[threading.Thread, list[float]]:
    """Take a dependency down now and bring it back after seconds; [down_at, up_at]."""
    moments: list[float] = []

    def run() -> None:
        down()
        moments.append(time.monotonic())
        time.sleep(seconds)
        up()
        moments.append(time.monotonic())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, moments


def system_on(
    postgres_server: PostgresServer, chaos_system: Callable[..., ChaosSystem]
) -> ChaosSystem:
    """The whole system on a PostgreSQL of the test's own, with MIN_SUBMISSIONS funded rifts."""
    migrate(postgres_server.url)
    system = chaos_system(database_url=postgres_server.url)
    system.fund_rifts(MIN_SUBMISSIONS)
    return system


def test_postgresql_stopped_for_15_s_is_503_json_then_every_accepted_proof_gets_a_verdict(
    chaos_system, figures, postgres_server: PostgresServer
):
    system = system_on(postgres_server, chaos_system)
    measured = figures("PostgreSQL stopped 15 s under load")
    threads: list[tuple[threading.Thread, list[float]]] = []

    def stop_database(i: int) -> None:
        if i == MIN_SUBMISSIONS // 5:
            threads.append(outage(postgres_server.stop, postgres_server.start, POSTGRES_DOWN_S))

    # submit_all fails on any answer other than 202 or a 503 JSON body saying what to do
    system.submit_all(measured, pace_s=POSTGRES_PACE_S, during=stop_database)
    thread, moments = threads[0]
    thread.join()
    down_at, up_at = moments
    refused = list(system.refused)
    assert refused, "no submission was made during the outage"
    # The refused ones are sent again, as their Retry-After says, and now accepted.
    resent = figures("PostgreSQL back: the refused submissions sent again")
    system.submit_all(resent, rifts=refused)
    assert resent.accepted == len(refused), resent.line()
    system.wait_for_verdicts(timeout_s=VERDICTS_AFTER_S)
    measured.recovery_s = time.monotonic() - up_at
    assert_promise_kept(system, measured)
    assert system.count(resent).lost == 0
    measured.notes["outage_s"] = round(up_at - down_at, 1)


def test_clamd_down_for_30_s_scans_retry_and_complete_and_nothing_is_clean_unscanned(
    chaos_system, figures
):
    # A scan's retry budget must outlast the outage: 8 retries, 1 s doubling to 8 s (> 47 s).
    system = chaos_system(max_retries=8, min_backoff_ms=1_000, max_backoff_ms=8_000)
    measured = figures("clamd down 30 s under load")
    system.fund_rifts(MIN_SUBMISSIONS)
    proxy = system.clamd_proxy
    threads: list[tuple[threading.Thread, list[float]]] = []

    def take_clamd_down(i: int) -> None:
        if i == MIN_SUBMISSIONS // 5:
            down = lambda: setattr(proxy, "down", True)  # noqa: E731
            up = lambda: setattr(proxy, "down", False)  # noqa: E731
            threads.append(outage(down, up, CLAMD_DOWN_S))

    system.submit_all(measured, pace_s=CLAMD_PACE_S, during=take_clamd_down)
    thread, moments = threads[0]
    thread.join()
    down_at, up_at = moments
    system.wait_for_verdicts(timeout_s=VERDICTS_AFTER_S)
    measured.recovery_s = time.monotonic() - up_at
    assert_promise_kept(system, measured)
    # Every file was scanned for real: none ERROR (the retries outlasted the outage)
    with system.sessions() as session:
        statuses = [
            status
            for (status,) in session.query(Asset.scan_status).filter(
                Asset.rift_id.in_(system.rifts)
            )
        ]
    assert statuses.count(ScanStatus.CLEAN) == MIN_SUBMISSIONS, statuses
    measured.notes["outage_s"] = round(up_at - down_at, 1)


def test_jobs_that_find_postgresql_down_wait_for_it_and_spend_no_retries(
    chaos_system, figures, postgres_server: PostgresServer
):
    # Given 100 accepted proofs whose 200 messages wait in Redis while no pool runs
    system = system_on(postgres_server, chaos_system)
    measured = figures("PostgreSQL down 6 s while every job waits")
    queues = list(system.pools)
    for queue in queues:
        assert system.stop_pool(queue) == 0
    system.submit_all(measured)
    assert sum(system.waiting_messages(q) for q in queues) == 2 * MIN_SUBMISSIONS

    # When the database goes down and the pools take every message, for many times the
    # retry schedule, then the database comes back
    postgres_server.stop()
    for queue in queues:
        system.start_pool(queue)
    time.sleep(WAITING_OUTAGE_S)
    dead_lettered_in_outage = sum(system.redis.zcard(f"dramatiq:{q}.XQ") for q in queues)
    postgres_server.start()
    up_at = time.monotonic()
    system.wait_for_verdicts(timeout_s=WAITING_RECOVERY_S)
    measured.recovery_s = time.monotonic() - up_at

    # Then every proof has its verdict soon after, none dead-lettered, and every job ran
    # once: a delivery that could not be recorded did not count as an attempt
    assert_promise_kept(system, measured)
    assert dead_lettered_in_outage == 0, f"{dead_lettered_in_outage} messages dead-lettered"
    assert sum(system.redis.zcard(f"dramatiq:{q}.XQ") for q in queues) == 0
    jobs = system.jobs(*JobState)
    assert len(jobs) == 2 * MIN_SUBMISSIONS
    assert {(j.state, j.attempts) for j in jobs} == {(JobState.SUCCEEDED, 1)}, [
        (j.actor_name, j.state, j.attempts, j.last_error) for j in jobs if j.attempts != 1
    ][:5]
    measured.notes["outage_s"] = WAITING_OUTAGE_S
