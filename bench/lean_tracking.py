"""A prototype, for measurement only: JobTracking with one UPDATE per lifecycle hook.

The product's JobTracking loads the job row through the ORM twice per hook (a get, then a
get FOR UPDATE), flushes and commits, on a pool that pings PostgreSQL at every checkout.
This variant writes the same columns with one `UPDATE ... WHERE id = :id` per hook on a
pool without the ping, and falls back to the product's code on every failure path, so
its effect on the no-op drain rate shows what the change would buy.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import SkipMessage
from sqlalchemy import Engine, create_engine, func, select, update

from actors.tracking import JobTracking
from service.models import FINAL_JOB_STATES, Job, JobState


class LeanJobTracking(JobTracking):
    def __init__(self, product: JobTracking) -> None:
        super().__init__(product.sessions, product.clock, product.on_final_failure)
        bound: Engine = product.sessions.kw["bind"]
        self.engine = create_engine(bound.url, pool_pre_ping=False)

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            running = conn.execute(
                update(Job)
                .where(Job.id == message.message_id, Job.state.not_in(list(FINAL_JOB_STATES)))
                .values(
                    state=JobState.RUNNING,
                    attempts=Job.attempts + 1,
                    started_at=func.coalesce(Job.started_at, now),
                    dispatched_at=func.coalesce(Job.dispatched_at, now),
                    updated_at=now,
                )
            ).rowcount
            if not running:
                state = conn.execute(select(Job.state).where(Job.id == message.message_id)).scalar()
                if state is not None:
                    raise SkipMessage(f"job {message.message_id} already {state.value}")

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is not None:
            super().after_process_message(broker, message, result=result, exception=exception)
            return
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(
                update(Job)
                .where(Job.id == message.message_id)
                .values(
                    state=JobState.SUCCEEDED,
                    updated_at=now,
                    progress=100,
                    finished_at=now,
                    result=result if isinstance(result, dict) else None,
                )
            )


def use_lean_tracking(broker: dramatiq.Broker) -> None:
    """Swap the broker's JobTracking for the lean variant, in place."""
    for index, middleware in enumerate(broker.middleware):
        if type(middleware) is JobTracking:
            broker.middleware[index] = LeanJobTracking(middleware)
