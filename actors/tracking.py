"""Keep each job record current from the worker's lifecycle hooks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NoReturn

import dramatiq
from dramatiq.common import compute_backoff
from dramatiq.middleware import Middleware, MiddlewareError, SkipMessage

from actors.dispatch import REQUEST_ID_OPTION
from actors.job_record_writes import AttemptStart
from actors.job_records import JobRecords
from service.db import SessionFactory
from service.db_outage import is_transient
from service.domain.clock import Clock
from service.models import FINAL_JOB_STATES, Job, JobState
from service.observability.job_context import bind_job_context, clear_job_context
from service.observability.redaction import safe_error_text

log = logging.getLogger(__name__)

# How many deliveries of a message found the database down (see _wait_for_database).
DATABASE_WAITS_OPTION = "rift_database_waits"
# The longest a waiting job (or outcome) sleeps between tries: how late, at most, after
# the database is back it runs. A try costs one refused connection.
DATABASE_WAIT_CAP_MS = 15_000
# The attempt number a delivery started (its RUNNING write's), kept for a late outcome.
ATTEMPT_OPTION = "rift_attempt"
# On a copy of a message sent only to write the outcome its job could not (PendingOutcome).
PENDING_OUTCOME_OPTION = "rift_pending_outcome"

FinalFailureHook = Callable[[dramatiq.Message[Any], Job, BaseException | None], None]


class JobRecordUnavailable(MiddlewareError):
    """The RUNNING write failed (database down): the message is retried, not run unrecorded.

    A MiddlewareError is the one kind of error Dramatiq lets out of a before-hook: the
    worker then skips the actor and hands the error to the after-hooks, so Retries puts
    the message back with a back-off instead of running a job nobody has a record of.
    """


@dataclass(frozen=True)
class PendingOutcome:
    """How an attempt ended, kept in the broker while the database cannot take it."""

    state: JobState
    at: datetime
    attempt: int | None
    result: dict[str, Any] | None = None
    error: str | None = None
    #: Deliveries of it that found the database still down.
    waits: int = 0

    def to_option(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "at": self.at.isoformat(),
            "attempt": self.attempt,
            "result": self.result,
            "error": self.error,
            "waits": self.waits,
        }

    @classmethod
    def from_option(cls, value: dict[str, Any]) -> PendingOutcome:
        return cls(
            state=JobState(value["state"]),
            at=datetime.fromisoformat(value["at"]),
            attempt=value["attempt"],
            result=value["result"],
            error=value["error"],
            waits=int(value["waits"]),
        )


class JobTracking(Middleware):
    """Write RUNNING / RETRYING / SUCCEEDED / FAILED / DEAD onto the job record.

    Must sit before Retries in the middleware list (Dramatiq runs after-hooks in reverse):
    by the time after_process_message runs here, Retries has either re-enqueued the
    message or marked it failed, so this hook knows whether an error was the last one.
    """

    def __init__(
        self,
        records: JobRecords,
        sessions: SessionFactory,
        clock: Clock,
        on_final_failure: FinalFailureHook | None = None,
    ) -> None:
        # Two writes per message on the hot path, each one prebuilt UPDATE on the worker
        # thread's own connection (the job-system benchmark measures exactly this).
        self.records = records
        self.sessions = sessions
        self.clock = clock
        self.on_final_failure = on_final_failure

    def before_worker_thread_shutdown(self, broker: dramatiq.Broker, thread: Any) -> None:
        self.records.close_thread_connection()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        # Threads still busy past the shutdown timeout: their connections go too.
        self.records.close()

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        if PENDING_OUTCOME_OPTION in message.options:
            self._write_late(broker, message)
        # A retried message carries its last delivery's options: only this one's start
        # may name the attempt its outcome belongs to.
        message.options.pop(ATTEMPT_OPTION, None)
        try:
            attempt = self.records.start_attempt(message.message_id, self.clock())
        except Exception as exc:
            if is_transient(exc):
                self._wait_for_database(broker, message, exc)
            log.warning(
                "could not mark the job RUNNING; retrying the message instead of running it",
                extra={"job_id": message.message_id, "error": _describe(exc)},
            )
            raise JobRecordUnavailable(f"job record not written: {_describe(exc)}") from exc
        if attempt.start is AttemptStart.ALREADY_FINISHED:
            # At-least-once delivery: a redelivered message of a finished job is dropped.
            log.info(
                "skipping redelivered message of finished job", extra={"job_id": message.message_id}
            )
            raise SkipMessage(f"job {message.message_id} already finished")
        message.options[ATTEMPT_OPTION] = attempt.number
        # Every log line and Sentry event of this job carries its ids, and the id of the
        # request that created it (never its content).
        bind_job_context(
            job_id=message.message_id,
            actor=message.actor_name,
            rift_id=attempt.rift_id,
            request_id=message.options.get(REQUEST_ID_OPTION),
        )

    def _wait_for_database(self, broker: dramatiq.Broker, message: Any, exc: Exception) -> None:
        """Send the message again later without spending a retry, then skip this delivery.

        The job has not started, so a database outage must not use up its retries:
        Dramatiq's Retries would dead-letter it after a few seconds' outage, leaving its
        record stale (RUNNING, if an earlier attempt's outcome could not be written) for
        the reconciler to find only after the kind's time limit. The delay doubles from
        the actor's min_backoff to at most DATABASE_WAIT_CAP_MS. If the broker refuses
        too, this returns and the caller falls back to Retries.
        """
        waits = int(message.options.get(DATABASE_WAITS_OPTION, 0))
        delay = _database_wait_ms(broker, message, waits)
        message.options[DATABASE_WAITS_OPTION] = waits + 1
        try:
            broker.enqueue(message, delay=delay)
        except Exception as enqueue_error:
            message.options[DATABASE_WAITS_OPTION] = waits
            log.warning(
                "could not send the job again to wait for the database",
                extra={"job_id": message.message_id, "error": _describe(enqueue_error)},
            )
            return
        # The first wait of a job is a warning; the ones after it would flood the log.
        (log.warning if waits == 0 else log.info)(
            "database unavailable: the job waits for it without spending a retry",
            extra={
                "job_id": message.message_id,
                "delay_ms": delay,
                "waits": waits + 1,
                "error": _describe(exc),
            },
        )
        raise SkipMessage(f"job {message.message_id} waits for the database")

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        clear_job_context()
        if PENDING_OUTCOME_OPTION in message.options:
            # A copy that only carried an outcome (handled, and skipped, before it ran):
            # whatever ended it is not the job's outcome.
            return
        if exception is None:
            state = JobState.SUCCEEDED
        elif not message.failed:
            state = JobState.RETRYING
        elif self._is_permanent(broker, message, exception):
            state = JobState.FAILED
        else:
            state = JobState.DEAD
        error = None if exception is None else _describe(exception)
        self._record(
            broker,
            message,
            state,
            exception,
            error=error,
            result=result if isinstance(result, dict) else None,
        )

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        # AgeLimit fails a message before skipping it; our own skip (finished job) does not.
        if message.failed and PENDING_OUTCOME_OPTION not in message.options:
            self._record(
                broker,
                message,
                JobState.DEAD,
                None,
                error="message expired before a worker took it (age limit)",
            )

    def _record(
        self,
        broker: dramatiq.Broker,
        message: Any,
        state: JobState,
        exception: BaseException | None,
        *,
        error: str | None,
        result: dict[str, Any] | None = None,
    ) -> None:
        outcome = PendingOutcome(
            state, self.clock(), message.options.get(ATTEMPT_OPTION), result, error
        )
        self._write_outcome(broker, message, outcome, exception, late=False)

    def _write_outcome(
        self,
        broker: dramatiq.Broker,
        message: Any,
        outcome: PendingOutcome,
        exception: BaseException | None,
        *,
        late: bool,
    ) -> None:
        try:
            known = self.records.record_outcome(
                message.message_id,
                outcome.state,
                outcome.at,
                result=outcome.result,
                error=outcome.error,
                # A late outcome must not overwrite an attempt started since (the
                # reconciler's, or a retry's); on time, the record is at this attempt.
                attempt=outcome.attempt if late else None,
            )
        except Exception as exc:
            if not is_transient(exc):
                raise
            self._write_later(broker, message, outcome, exc)
            return
        if (
            known
            and outcome.state in FINAL_JOB_STATES - {JobState.SUCCEEDED}
            and self.on_final_failure is not None
        ):
            with self.sessions() as session:
                job = session.get_one(Job, message.message_id)
            self.on_final_failure(message, job, exception)

    def _write_later(
        self, broker: dramatiq.Broker, message: Any, outcome: PendingOutcome, exc: Exception
    ) -> None:
        """Keep an outcome the database could not take in a copy of the message, sent later.

        Without it the record would say RUNNING (and a final failure would go
        uncompensated) until the reconciler's limit for a running job, minutes away: the
        job ran, only its record is behind. The copy only writes the outcome, guarded on
        the attempt, then is skipped; it waits as a job waits for the database.
        """
        if outcome.attempt is None:
            # No attempt of this delivery started (an expired message, or a RUNNING write
            # that failed): written late, unguarded, it could end an attempt started since.
            log.warning(
                "database unavailable: the outcome of a delivery that never started is "
                "dropped; the reconciler sends the job again if it is lost",
                extra={"job_id": message.message_id, "state": outcome.state.value},
            )
            return
        delay = _database_wait_ms(broker, message, outcome.waits)
        copy = message.copy(
            options={PENDING_OUTCOME_OPTION: replace(outcome, waits=outcome.waits + 1).to_option()},
            # A fresh age: AgeLimit would expire (and record DEAD) a job that is done.
            message_timestamp=int(self.clock().timestamp() * 1000),
        )
        details = {
            "job_id": message.message_id,
            "state": outcome.state.value,
            "delay_ms": delay,
            "waits": outcome.waits + 1,
            "error": _describe(exc),
        }
        try:
            broker.enqueue(copy, delay=delay)
        except Exception as enqueue_error:
            log.error(
                "could not keep the job's outcome to write later; its record stays as it "
                "is until the reconciler finds it",
                extra={**details, "enqueue_error": _describe(enqueue_error)},
            )
            return
        (log.warning if outcome.waits == 0 else log.info)(
            "database unavailable: the job's outcome waits for it", extra=details
        )

    def _write_late(self, broker: dramatiq.Broker, message: Any) -> NoReturn:
        try:
            outcome = PendingOutcome.from_option(message.options[PENDING_OUTCOME_OPTION])
            self._write_outcome(broker, message, outcome, None, late=True)
        except Exception as exc:
            # Raised from a before-hook, Dramatiq would log it and run the job again.
            log.error(
                "could not write the job's late outcome; its record stays as it is until "
                "the reconciler finds it",
                extra={"job_id": message.message_id, "error": _describe(exc)},
            )
        raise SkipMessage(f"job {message.message_id}: a copy that only carried its outcome")

    @staticmethod
    def _is_permanent(broker: dramatiq.Broker, message: Any, exception: BaseException) -> bool:
        throws = broker.get_actor(message.actor_name).options.get("throws")
        return isinstance(throws, tuple | type) and isinstance(exception, throws)


def _database_wait_ms(broker: dramatiq.Broker, message: Any, waits: int) -> int:
    """The wait before try `waits` + 1: doubling from the actor's min_backoff, capped."""
    actor = broker.get_actor(message.actor_name)
    cap = min(actor.options.get("max_backoff", DATABASE_WAIT_CAP_MS), DATABASE_WAIT_CAP_MS)
    _, delay = compute_backoff(
        waits, factor=actor.options.get("min_backoff", DATABASE_WAIT_CAP_MS), max_backoff=cap
    )
    return int(delay)


def _describe(exception: BaseException) -> str:
    # last_error is shown over the API and in the console: the class and a message that
    # carries no bound values or proof content.
    return safe_error_text(exception)
