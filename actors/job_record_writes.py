"""The two writes a worker makes to a job record per message, and the statements they run.

RUNNING before the actor runs (counting the attempt, unless the job already finished),
the outcome after it. The statements are built once on the Core table and run by
actors/job_records.py straight on the database driver, or by any `RunStatement`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import Table, and_, bindparam, func, select, update
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import Update

from service.models import FINAL_JOB_STATES, Job, JobState

# An operator reads the start of an error; a traceback-sized text would bloat every row.
ERROR_TEXT_MAX_CHARS = 2_000
_NOW = bindparam("now", type_=Job.updated_at.type)


class AttemptStart(enum.Enum):
    STARTED = "started"
    ALREADY_FINISHED = "already_finished"
    UNKNOWN_JOB = "unknown_job"


class Attempt(NamedTuple):
    """How a delivery started: its rift id and attempt number when it STARTED, else None."""

    start: AttemptStart
    rift_id: str | None = None
    number: int | None = None


# The two job-record writes every message pays (tracking hooks) are built once, on the
# Core table, and run by actors/job_records.py straight on the driver: building an
# ORM-enabled UPDATE per call, then SQLAlchemy's per-execution work, cost more worker CPU
# than Dramatiq's own handling of the message (bench measurement 1).
_JOBS: Table = Job.__table__  # type: ignore[assignment]  # declared as FromClause
_JOB_ID = bindparam("job_id", type_=_JOBS.c.id.type)
# `!=` per state rather than NOT IN: an IN list is rendered per execution ("expanding"),
# these are compiled once with the statement.
_UNFINISHED_STATE = and_(*(_JOBS.c.state != state for state in sorted(FINAL_JOB_STATES)))
START_ATTEMPT = (
    update(_JOBS)
    .where(_JOBS.c.id == _JOB_ID, _UNFINISHED_STATE)
    .values(
        state=JobState.RUNNING,
        attempts=_JOBS.c.attempts + 1,
        started_at=func.coalesce(_JOBS.c.started_at, _NOW),
        dispatched_at=func.coalesce(_JOBS.c.dispatched_at, _NOW),
        updated_at=_NOW,
    )
    .returning(_JOBS.c.rift_id, _JOBS.c.attempts)
)
JOB_EXISTS = select(_JOBS.c.id).where(_JOBS.c.id == _JOB_ID)
# An outcome without error text keeps the last one (an operator reads it).
_ERROR_OR_LAST = func.coalesce(
    bindparam("error", type_=_JOBS.c.last_error.type), _JOBS.c.last_error
)


class OutcomeStatements(NamedTuple):
    succeeded: Update
    finished_with_error: Update
    unfinished: Update


def _outcome_statements(outcome: Update) -> OutcomeStatements:
    return OutcomeStatements(
        succeeded=outcome.values(
            state=JobState.SUCCEEDED,
            result=bindparam("result", type_=_JOBS.c.result.type),
            progress=100,
            updated_at=_NOW,
            finished_at=_NOW,
        ),
        finished_with_error=outcome.values(
            state=bindparam("state", type_=_JOBS.c.state.type),
            last_error=_ERROR_OR_LAST,
            updated_at=_NOW,
            finished_at=_NOW,
        ),
        unfinished=outcome.values(
            state=bindparam("state", type_=_JOBS.c.state.type),
            last_error=_ERROR_OR_LAST,
            updated_at=_NOW,
        ),
    )


# Guarded on the current state: a duplicate delivery's outcome (at-least-once) never
# turns a finished job back, e.g. SUCCEEDED into RETRYING or DEAD.
_OUTCOME = update(_JOBS).where(_JOBS.c.id == _JOB_ID, _UNFINISHED_STATE)
OUTCOME = _outcome_statements(_OUTCOME)
# An outcome written late (it waited for the database, actors/tracking.py) is guarded on
# its attempt too: a later attempt, started meanwhile, writes its own.
OUTCOME_OF_ATTEMPT = _outcome_statements(
    _OUTCOME.where(_JOBS.c.attempts == bindparam("attempt", type_=_JOBS.c.attempts.type))
)
JOB_RECORD_STATEMENTS = (START_ATTEMPT, JOB_EXISTS, *OUTCOME, *OUTCOME_OF_ATTEMPT)


class RunStatement(Protocol):
    """Runs one of JOB_RECORD_STATEMENTS: returns its row count and first row, if any."""

    def __call__(
        self, statement: ClauseElement, params: dict[str, Any]
    ) -> tuple[int, Sequence[Any] | None]: ...


def record_running(run: RunStatement, job_id: str, now: datetime) -> Attempt:
    """Mark a job RUNNING and count the attempt, unless it already finished.

    One UPDATE on the hot path (a worker pays it per message); only a redelivered or
    unknown message costs a second query to tell which it was.
    """
    _, started = run(START_ATTEMPT, {"job_id": job_id, "now": now})
    if started is not None:
        return Attempt(AttemptStart.STARTED, started[0], started[1])
    _, known = run(JOB_EXISTS, {"job_id": job_id})
    return Attempt(AttemptStart.ALREADY_FINISHED if known else AttemptStart.UNKNOWN_JOB)


def record_outcome(
    run: RunStatement,
    job_id: str,
    state: JobState,
    now: datetime,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    attempt: int | None = None,
) -> bool:
    """Store the outcome of one attempt in one UPDATE; False when no such job is unfinished.

    With `attempt`, only while the record is still at that attempt (a late outcome).
    """
    params: dict[str, Any] = {"job_id": job_id, "now": now}
    statements = OUTCOME
    if attempt is not None:
        statements, params["attempt"] = OUTCOME_OF_ATTEMPT, attempt
    if error is not None:
        error = error[:ERROR_TEXT_MAX_CHARS]
    if state is JobState.SUCCEEDED:
        statement, params["result"] = statements.succeeded, result
    elif state in FINAL_JOB_STATES:
        statement, params["state"], params["error"] = statements.finished_with_error, state, error
    else:
        statement, params["state"], params["error"] = statements.unfinished, state, error
    count, _ = run(statement, params)
    return bool(count)
