"""Worker setup: the one entry point that wires workers (`dramatiq actors.broker:setup`).

The broker itself is built by actors/transport.py, shared with the API and the scheduler;
this module adds what only workers have: job tracking, heartbeats, services and actors.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.middleware import AgeLimit
from sqlalchemy.pool import NullPool

from actors import cleanup, scan, verification
from actors.heartbeat import WorkerHeartbeat
from actors.inspection_warm_up import InspectionWarmUp
from actors.job_records import JobRecords
from actors.services import WorkerServices
from actors.tracking import JobTracking
from actors.transport import build_broker, redis_client
from service.blobs import blob_store_from_settings
from service.db import SessionFactory, create_db_engine, create_session_factory
from service.domain.clock import new_id, utcnow
from service.domain.final_failures import CompensationServices, compensate_final_failure
from service.domain.queues import VERIFY_PROOF, job_kind
from service.domain.verdicts import ReleasePolicy, VerdictRules
from service.inspection import RuleInspector, build_inspector
from service.models import Job
from service.observability.logs import configure_logging
from service.observability.sentry import init_sentry, report_final_failure
from service.observability.worker_metrics import WorkerMetrics
from service.scanning.address import ClamdAddress
from service.scanning.clamd import ClamdScanner
from service.settings import Settings
from service.verification.license_keys import LicenseKeyVault

log = logging.getLogger(__name__)


def build_services(
    settings: Settings,
    broker: dramatiq.Broker,
    metrics: WorkerMetrics,
    sessions: SessionFactory,
) -> WorkerServices:
    thresholds = settings.thresholds()
    blobs = blob_store_from_settings(settings)
    vault = LicenseKeyVault(settings.license_key_secret.encode())
    return WorkerServices(
        settings=settings,
        sessions=sessions,
        blobs=blobs,
        scanner=ClamdScanner(
            ClamdAddress.parse(settings.clamd_address), timeout_s=settings.scan_timeout_s
        ),
        inspect=build_inspector(blobs, vault, thresholds),
        rules=VerdictRules(
            thresholds=thresholds,
            release=ReleasePolicy.from_hours(
                settings.auto_release_hours, settings.auto_release_hours_digital
            ),
        ),
        metrics=metrics,
        clock=utcnow,
        ids=new_id,
    )


def register_actors(broker: dramatiq.Broker, services: WorkerServices) -> None:
    verification.register(broker, services)
    scan.register(broker, services)
    cleanup.register(broker, services)


class FinalFailureReporter:
    """Called once per job that is FAILED or DEAD: metrics, compensation, Sentry."""

    def __init__(self) -> None:
        self.services: WorkerServices | None = None

    def __call__(self, message: Any, job: Job, error: BaseException | None) -> None:
        services = self.services
        if services is None:
            return
        services.metrics.final_failures.labels(job.actor_name, job.queue_name).inc()
        compensated = compensate_final_failure(
            job_kind(job.actor_name),
            CompensationServices(services.sessions, services.rules, services.clock, services.ids),
            job.subject_id,
            job.last_error,
        )
        if compensated.scan_status is not None:
            services.metrics.scan_verdicts.labels(compensated.scan_status.value).inc()
        services.metrics.observe_verdict(compensated.verdict)
        report_final_failure(
            job_id=job.id,
            actor=job.actor_name,
            queue=job.queue_name,
            rift_id=job.rift_id,
            request_id=job.request_id,
            attempts=job.attempts,
            error=error,
            reason=job.last_error or job.state.value,
        )


def setup(settings: Settings | None = None, *, prometheus: bool = True) -> dramatiq.Broker:
    """Wire a worker process: settings, logging, Sentry, broker, middleware, actors."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_format)
    init_sentry(settings, "worker")
    engine = create_db_engine(settings.database_url)
    sessions = create_session_factory(engine)
    # Job records are written twice per message, one statement at a time, each worker
    # thread on a connection it keeps.
    records = JobRecords(
        create_db_engine(settings.database_url, single_statements=True, poolclass=NullPool)
    )
    reporter = FinalFailureReporter()
    # On Redis, workers stamp heartbeats (Dramatiq's, for redelivery, and the liveness the
    # queue statistics read); RabbitMQ knows its consumers, and redelivers a dead one's
    # unacknowledged messages when its connection drops.
    liveness = [] if settings.uses_rabbitmq else [WorkerHeartbeat(redis_client(settings))]
    broker = build_broker(
        settings,
        tracking=[JobTracking(records, sessions, utcnow, on_final_failure=reporter)],
        extra_middleware=liveness,
    )
    if prometheus:
        from actors.prometheus import PrometheusFromBoot

        # First in the list: a message that AgeLimit or JobTracking skips still gets
        # after_skip_message, which decrements the in-progress gauge; placed later, its
        # before_process_message (the increment) never ran and the gauge goes negative.
        broker.add_middleware(PrometheusFromBoot(), before=AgeLimit)
    dramatiq.set_broker(broker)
    services = build_services(settings, broker, WorkerMetrics(), sessions)
    if isinstance(services.inspect, RuleInspector):  # the rules' own, with a fork server
        broker.add_middleware(
            InspectionWarmUp(services.inspect.files.prepare, VERIFY_PROOF.queue_name)
        )
    reporter.services = services
    register_actors(broker, services)
    return broker
