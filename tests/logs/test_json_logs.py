"""JSON log lines keep the traceback of a failure, from structlog and stdlib loggers alike."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import structlog

from service.observability.logs import bound_log_context, log_context
from tests.support.processes import REPO_ROOT

RUN_TIMEOUT_S = 60

# A process of its own: configure_logging replaces the root handler, which pytest's
# log capture and every later test in this session would otherwise inherit.
FAILING_JOB = textwrap.dedent(
    """
    import logging
    import structlog
    from service.observability.logs import bound_log_context, configure_logging

    configure_logging("json")

    def fetch_blob():
        raise ValueError("blob store unreachable")

    with bound_log_context(job_id="job-1", rift_id="rift-1", request_id="req-1"):
        try:
            fetch_blob()
        except ValueError:
            structlog.get_logger("actors.verification").exception("verification failed")
            logging.getLogger("dramatiq.worker.WorkerThread").exception("stdlib failure")
    structlog.get_logger("actors.verification").info("after the job")
    """
)


def json_lines(script: str) -> list[dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr
    # Every line must parse: a traceback printed beside the JSON would break this.
    return [json.loads(line) for line in result.stderr.splitlines()]


def test_a_failing_jobs_json_line_carries_its_traceback_and_ids() -> None:
    structlog_line, stdlib_line, after = json_lines(FAILING_JOB)
    for line in (structlog_line, stdlib_line):
        assert "exc_info" not in line
        exception = str(line["exception"])
        assert exception.startswith("Traceback (most recent call last):")
        assert "in fetch_blob" in exception
        assert exception.rstrip().endswith("ValueError: blob store unreachable")
        assert (line["job_id"], line["rift_id"], line["request_id"]) == ("job-1", "rift-1", "req-1")
        assert line["level"] == "error"
    assert structlog_line["event"] == "verification failed"
    assert stdlib_line["logger"] == "dramatiq.worker.WorkerThread"
    # The ids end with the block: the next job's lines start clean.
    assert after["event"] == "after the job"
    assert not {"job_id", "rift_id", "request_id", "exception"} & after.keys()


def test_bound_log_context_restores_the_outer_ids_and_leaves_out_missing_ones() -> None:
    structlog.contextvars.clear_contextvars()
    with bound_log_context(request_id="req-outer"):
        with bound_log_context(job_id="job-1", rift_id=None):
            assert log_context() == {"request_id": "req-outer", "job_id": "job-1"}
        assert log_context() == {"request_id": "req-outer"}
    assert log_context() == {}
