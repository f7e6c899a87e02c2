"""Keep each job record current from the worker's lifecycle hooks."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any

import dramatiq
import structlog
from dramatiq.middleware import Middleware, SkipMessage

from service.db import SessionFactory, transaction
from service.domain.clock import Clock
from service.domain.jobs import record_outcome, record_running
from service.models import FINAL_JOB_STATES, Job, JobState

log = logging.getLogger(__name__)

FinalFailureHook = Callable[[dramatiq.Message[Any], Job, BaseException | None], None]


class JobTracking(Middleware):
    """Write RUNNING / RETRYING / SUCCEEDED / FAILED / DEAD onto the job record.

    Must sit before Retries in the middleware list (Dramatiq runs after-hooks in reverse):
    by the time after_process_message runs here, Retries has either re-enqueued the
    message or marked it failed, so this hook knows whether an error was the last one.
    """

    def __init__(
        self,
        sessions: SessionFactory,
        clock: Clock,
        on_final_failure: FinalFailureHook | None = None,
    ) -> None:
        self.sessions = sessions
        self.clock = clock
        self.on_final_failure = on_final_failure

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        with transaction(self.sessions) as session:
            job = session.get(Job, message.message_id)
            if job is not None and job.state in FINAL_JOB_STATES:
                # At-least-once delivery: a redelivered message of a finished job is dropped.
                log.info(
                    "skipping redelivered message of finished job",
                    extra={"job_id": job.id, "state": job.state.value},
                )
                raise SkipMessage(f"job {job.id} already {job.state.value}")
            running = record_running(session, message.message_id, self.clock())
        # Every log line of this job carries its ids (never its content).
        structlog.contextvars.bind_contextvars(
            job_id=message.message_id,
            actor=message.actor_name,
            rift_id=running.rift_id if running is not None else None,
        )

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        structlog.contextvars.clear_contextvars()
        now = self.clock()
        if exception is None:
            state = JobState.SUCCEEDED
        elif not message.failed:
            state = JobState.RETRYING
        elif self._is_permanent(broker, message, exception):
            state = JobState.FAILED
        else:
            state = JobState.DEAD
        error = None if exception is None else _describe(exception)
        with transaction(self.sessions) as session:
            job = record_outcome(
                session,
                message.message_id,
                state,
                now,
                result=result if isinstance(result, dict) else None,
                error=error,
            )
        if (
            job is not None
            and state in (JobState.FAILED, JobState.DEAD)
            and self.on_final_failure is not None
        ):
            self.on_final_failure(message, job, exception)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        # AgeLimit fails a message before skipping it; our own skip (finished job) does not.
        if not message.failed:
            return
        with transaction(self.sessions) as session:
            job = record_outcome(
                session,
                message.message_id,
                JobState.DEAD,
                self.clock(),
                error="message expired before a worker took it (age limit)",
            )
        if job is not None and self.on_final_failure is not None:
            self.on_final_failure(message, job, None)

    @staticmethod
    def _is_permanent(broker: dramatiq.Broker, message: Any, exception: BaseException) -> bool:
        throws = broker.get_actor(message.actor_name).options.get("throws")
        return isinstance(throws, tuple | type) and isinstance(exception, throws)


def _describe(exception: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exception), exception)).strip()
    return text or type(exception).__name__
