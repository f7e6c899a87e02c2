"""Redis killed and restarted while messages wait in it, with and without its append-only file.

Budget: 100 submissions piled up behind paused pools, Redis down about 2 s; with the file
every message survives, without it the reconciler sends each lost job again (its
RECONCILE_QUEUED_AFTER_S is 10 s here), all within a minute of Redis coming back.
"""

from __future__ import annotations

import time

import pytest

from service.models import JobState
from tests.chaos.system import MIN_SUBMISSIONS
from tests.chaos.test_worker_faults import assert_promise_kept

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

RECOVERY_BOUND_S = 60.0
REDIS_DOWN_S = 2.0


@pytest.mark.parametrize("appendonly", [True, False], ids=["aof", "no-aof"])
def test_redis_killed_with_messages_waiting_loses_no_job(chaos_system, figures, appendonly):
    system = chaos_system(appendonly=appendonly)
    measured = figures(f"Redis SIGKILL with messages waiting ({'AOF' if appendonly else 'no AOF'})")
    system.fund_rifts(MIN_SUBMISSIONS)
    # Given pools paused, so every submission's messages wait in Redis
    for queue in ("verification", "scan"):
        assert system.stop_pool(queue) == 0
    system.submit_all(measured)
    waiting = system.waiting_messages("verification") + system.waiting_messages("scan")
    measured.notes["messages_waiting"] = waiting
    assert waiting >= 2 * MIN_SUBMISSIONS

    # When Redis is killed outright and started again on the same port and directory
    system.redis_server.kill()
    time.sleep(REDIS_DOWN_S)
    system.redis_server.start()
    back_at = time.monotonic()
    survived = system.waiting_messages("verification") + system.waiting_messages("scan")
    measured.notes["messages_after_restart"] = survived
    for queue in ("verification", "scan"):
        system.start_pool(queue)

    # Then every accepted proof reaches its verdict, within a minute of Redis coming back
    system.wait_for_verdicts(timeout_s=RECOVERY_BOUND_S * 2)
    measured.recovery_s = time.monotonic() - back_at
    assert_promise_kept(system, measured)
    assert measured.recovery_s < RECOVERY_BOUND_S, measured.line()
    if appendonly:
        assert survived == waiting
    else:
        assert survived == 0
        resent = [
            j
            for j in system.jobs(JobState.SUCCEEDED)
            if (j.last_error or "").startswith("re-dispatched")
        ]
        # (A job a worker starts between the resend and the record's update keeps its
        # record as the worker wrote it: the count is at most every job.)
        assert 0 < len(resent) <= 2 * MIN_SUBMISSIONS
        measured.notes["jobs_resent_by_reconciler"] = len(resent)
