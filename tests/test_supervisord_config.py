"""supervisord.conf keeps stops graceful and logs durable (the chaos suite signals the
pools the same way: one SIGTERM to the main process)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from supervisor.options import ServerOptions

from service.domain.queues import ALL_JOB_KINDS
from tests.support.processes import REPO_ROOT

ENV = {
    "CLAMD_PORT": "3310",
    "RIFT_START_CLAMD": "true",
    "VERIFICATION_PROCESSES": "1",
    "SCAN_PROCESSES": "1",
}


@pytest.fixture
def programs(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    options = ServerOptions()
    options.realize(["-c", str(REPO_ROOT / "supervisord.conf")])
    return {p.name: p for group in options.process_group_configs for p in group.process_configs}


def test_every_program_is_stopped_by_one_sigterm_to_its_main_process_and_logs_to_a_named_file(
    programs,
):
    assert set(programs) >= {"api", "scheduler", "worker-verification", "worker-scan"}
    for name, program in programs.items():
        # The whole group signalled at once hands Dramatiq's workers a second SIGTERM,
        # which it treats as "kill now".
        assert (program.stopsignal, program.stopasgroup, program.killasgroup) == (15, False, True)
        # AUTO log files are deleted by supervisord on shutdown.
        assert program.stdout_logfile.endswith(f"var/log/{name}.log"), program.stdout_logfile
        assert program.redirect_stderr


def test_a_pool_waits_for_its_longest_running_job_before_it_can_be_killed(programs):
    for name, program in programs.items():
        if not name.startswith("worker-"):
            continue
        queue = name.removeprefix("worker-")
        shutdown_ms = int(re.search(r"--worker-shutdown-timeout (\d+)", program.command)[1])
        longest = max(k.time_limit for k in ALL_JOB_KINDS if k.queue_name == queue)
        assert timedelta(milliseconds=shutdown_ms) > longest, name
        assert program.stopwaitsecs > shutdown_ms / 1000, name
