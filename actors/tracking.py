"""Keep each job record current from the worker's lifecycle hooks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware, MiddlewareError, SkipMessage

from actors.dispatch import REQUEST_ID_OPTION
from actors.job_record_writes import AttemptStart
from actors.job_records import JobRecords
from service.db import SessionFactory
from service.domain.clock import Clock
from service.models import FINAL_JOB_STATES, Job, JobState
from service.observability.job_context import bind_job_context, clear_job_context
from service.observability.redaction import safe_error_text

log = logging.getLogger(__name__)

FinalFailureHook = Callable[[dramatiq.Message[Any], Job, BaseException | None], None]


class JobRecordUnavailable(MiddlewareError):
    """The RUNNING write failed (database down): the message is retried, not run unrecorded.

    A MiddlewareError is the one kind of error Dramatiq lets out of a before-hook: the
    worker then skips the actor and hands the error to the after-hooks, so Retries puts
    the message back with a back-off instead of running a job nobody has a record of.
    """


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
        try:
            start, rift_id = self.records.start_attempt(message.message_id, self.clock())
        except Exception as exc:
            log.warning(
                "could not mark the job RUNNING; retrying the message instead of running it",
                extra={"job_id": message.message_id, "error": _describe(exc)},
            )
            raise JobRecordUnavailable(f"job record not written: {_describe(exc)}") from exc
        if start is AttemptStart.ALREADY_FINISHED:
            # At-least-once delivery: a redelivered message of a finished job is dropped.
            log.info(
                "skipping redelivered message of finished job", extra={"job_id": message.message_id}
            )
            raise SkipMessage(f"job {message.message_id} already finished")
        # Every log line and Sentry event of this job carries its ids, and the id of the
        # request that created it (never its content).
        bind_job_context(
            job_id=message.message_id,
            actor=message.actor_name,
            rift_id=rift_id,
            request_id=message.options.get(REQUEST_ID_OPTION),
        )

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        clear_job_context()
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
            message,
            state,
            exception,
            error=error,
            result=result if isinstance(result, dict) else None,
        )

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        # AgeLimit fails a message before skipping it; our own skip (finished job) does not.
        if message.failed:
            self._record(
                message,
                JobState.DEAD,
                None,
                error="message expired before a worker took it (age limit)",
            )

    def _record(
        self,
        message: Any,
        state: JobState,
        exception: BaseException | None,
        *,
        error: str | None,
        result: dict[str, Any] | None = None,
    ) -> None:
        known = self.records.record_outcome(
            message.message_id, state, self.clock(), result=result, error=error
        )
        if (
            known
            and state in FINAL_JOB_STATES - {JobState.SUCCEEDED}
            and self.on_final_failure is not None
        ):
            with self.sessions() as session:
                job = session.get_one(Job, message.message_id)
            self.on_final_failure(message, job, exception)

    @staticmethod
    def _is_permanent(broker: dramatiq.Broker, message: Any, exception: BaseException) -> bool:
        throws = broker.get_actor(message.actor_name).options.get("throws")
        return isinstance(throws, tuple | type) and isinstance(exception, throws)


def _describe(exception: BaseException) -> str:
    # last_error is shown over the API and in the console: the class and a message that
    # carries no bound values or proof content.
    return safe_error_text(exception)
