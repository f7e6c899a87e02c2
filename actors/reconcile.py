"""The scheduler's reliability upkeep: dead workers' messages, lost jobs, poison jobs."""

from __future__ import annotations

import logging
from datetime import timedelta

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from prometheus_client import Counter

from actors.redelivery import redeliver_dead_workers_messages
from actors.transport import Transport
from service.db import SessionFactory
from service.domain.clock import new_id, utcnow
from service.domain.final_failures import CompensationServices, compensate_final_failure
from service.domain.queues import QUEUE_NAMES, job_kind
from service.domain.reconciler import Reconciled, ReconcileLimits, reconcile
from service.domain.verdicts import ReleasePolicy, VerdictRules
from service.models import Job
from service.observability.sentry import report_final_failure
from service.settings import Settings

log = logging.getLogger(__name__)

# Room past a kind's time limit for a dead worker's heartbeat to time out and its
# message to come back, before the reconciler sends the job again itself.
RUNNING_MARGIN = timedelta(seconds=60)
RETRY_MARGIN = timedelta(seconds=60)


def reconcile_limits(settings: Settings) -> ReconcileLimits:
    return ReconcileLimits(
        queued_after=timedelta(seconds=settings.reconcile_queued_after_s),
        retry_margin=RETRY_MARGIN,
        running_margin=RUNNING_MARGIN
        + timedelta(milliseconds=settings.broker_heartbeat_timeout_ms),
        max_retries=settings.max_retries,
        max_backoff=timedelta(milliseconds=settings.max_backoff_ms),
    )


class Reconciler:
    """One reconcile pass per call, with the compensation a job's kind declares."""

    def __init__(
        self,
        settings: Settings,
        sessions: SessionFactory,
        transport: Transport,
        *,
        final_failures: Counter | None = None,
    ) -> None:
        broker = transport.broker
        # The workers count the final failures they see; jobs only the reconciler ends
        # (poison jobs whose worker dies each time) are counted here, under the same name.
        self.final_failures = final_failures
        self.sessions = sessions
        self.dispatcher = transport.dispatcher
        # Over AMQP, RabbitMQ counts a queue's ready messages but not those its consumers
        # hold unacknowledged, so it cannot tell a backlog from a loss: there, overdue jobs
        # are sent again (a finished job's copy is skipped). Its durable queues and
        # publisher confirms do not lose what they accepted.
        self.redis = broker.client if isinstance(broker, RedisBroker) else None
        self.namespace = getattr(broker, "namespace", "")
        self.limits = reconcile_limits(settings)
        thresholds = settings.thresholds()
        self.compensation = CompensationServices(
            sessions,
            VerdictRules(
                thresholds=thresholds,
                release=ReleasePolicy.from_hours(
                    settings.auto_release_hours, settings.auto_release_hours_digital
                ),
            ),
            utcnow,
            new_id,
        )

    def __call__(self) -> Reconciled:
        done = reconcile(
            self.sessions,
            self.dispatcher,
            utcnow,
            self.limits,
            self._finally_failed,
            backlog=None if self.redis is None else self.backlog,
        )
        # Counted once, when the pass ends the job; a compensation run again later (the
        # same callback) is not another failure.
        if self.final_failures is not None:
            for job in done.dead:
                self.final_failures.labels(job.actor_name, job.queue_name).inc()
        return done

    def backlog(self, queue: str) -> int:
        """Messages Dramatiq's Redis broker holds for queue: every message it has not
        acked (waiting, prefetched or running) and every delayed retry."""
        assert self.redis is not None
        pipe = self.redis.pipeline(transaction=False)
        pipe.hlen(f"{self.namespace}:{queue}.msgs")
        pipe.hlen(f"{self.namespace}:{queue}.DQ.msgs")
        return sum(int(n) for n in pipe.execute())

    def _finally_failed(self, job: Job) -> None:
        compensate_final_failure(
            job_kind(job.actor_name), self.compensation, job.subject_id, job.last_error
        )
        report_final_failure(
            job_id=job.id,
            actor=job.actor_name,
            queue=job.queue_name,
            rift_id=job.rift_id,
            attempts=job.attempts,
            error=None,
            reason=job.last_error or job.state.value,
        )


def redeliver(broker: dramatiq.Broker) -> None:
    """Hand dead workers' messages back (see actors/redelivery.py).

    Redis only: RabbitMQ requeues a consumer's unacknowledged messages itself, the moment
    its connection drops.
    """
    if isinstance(broker, RedisBroker):
        redeliver_dead_workers_messages(broker, QUEUE_NAMES)
