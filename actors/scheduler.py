"""The scheduler process: periodic upkeep and the metrics collector (`python -m actors.scheduler`).

Both are singletons by nature (one relay, one sweep, one collector per deployment), so they
share one small process instead of costing two.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType

from prometheus_client import CollectorRegistry, Counter, start_http_server

from actors.checkins import CheckedIn
from actors.collector import RiftCollector
from actors.leadership import Leadership, leadership_for
from actors.reconcile import Reconciler, reconcile_limits, redeliver
from actors.redelivery import REDELIVERY_INTERVAL_S
from actors.transport import connect_transport
from service.blobs import blob_store_from_settings
from service.db import create_db_engine, create_session_factory
from service.domain.clock import utcnow
from service.domain.jobs import relay_outbox
from service.domain.queues import ALL_JOB_KINDS
from service.domain.reconciler import count_overdue_jobs
from service.domain.retention import RetentionPolicy, count_stuck_jobs, sweep
from service.observability.logs import configure_logging
from service.observability.sentry import init_sentry
from service.scanning.address import ClamdAddress
from service.scanning.clamd import ClamdScanner
from service.settings import Settings

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 3600.0
STUCK_CHECK_INTERVAL_S = 60.0
# How often a standby tries the leader lock, and the leader proves it still holds it.
LEADER_CHECK_INTERVAL_S = 1.0


@dataclass
class PeriodicTask:
    name: str
    interval_s: float
    run: Callable[[], object]
    next_run: float = 0.0


def run_periodic(
    tasks: Sequence[PeriodicTask],
    stop: threading.Event,
    monotonic: Callable[[], float] = time.monotonic,
) -> None:
    """Run each task every interval until stop is set; a failing task never stops the loop."""
    while not stop.is_set():
        now = monotonic()
        for task in tasks:
            if now < task.next_run:
                continue
            try:
                task.run()
            except Exception:
                log.exception("periodic task failed", extra={"task": task.name})
            task.next_run = monotonic() + task.interval_s
        wait = min(t.next_run for t in tasks) - monotonic()
        stop.wait(max(wait, 0.01))


def led_by(leadership: Leadership, tasks: Sequence[PeriodicTask]) -> list[PeriodicTask]:
    """Run the tasks only while this instance leads; check the lead before each round.

    A standby's tasks come round as no-ops, so after a takeover each runs within one of
    its intervals (the relay within seconds, the hourly sweep within the hour).
    """
    leading = [False]

    def check() -> None:
        leading[0] = leadership.lead()

    def guarded(task: PeriodicTask) -> PeriodicTask:
        return PeriodicTask(task.name, task.interval_s, lambda: leading[0] and task.run())

    return [PeriodicTask("leadership", LEADER_CHECK_INTERVAL_S, check)] + [
        guarded(t) for t in tasks
    ]


def final_failures_counter(registry: CollectorRegistry) -> Counter:
    """`rift_job_final_failures_total` for the jobs the reconciler ends, zeroed per kind."""
    counter = Counter(
        "rift_job_final_failures",
        "Jobs that failed for good (FAILED or DEAD).",
        ["actor", "queue"],
        registry=registry,
    )
    for kind in ALL_JOB_KINDS:
        counter.labels(kind.actor_name, kind.queue_name)
    return counter


def main(settings: Settings | None = None, *, collector_port: int | None = None) -> None:
    settings = settings or Settings.from_env()
    configure_logging(settings.log_format)
    sentry = init_sentry(settings, "scheduler")
    sessions = create_session_factory(create_db_engine(settings.database_url))
    blobs = blob_store_from_settings(settings)
    transport = connect_transport(settings, sessions)
    scanner = ClamdScanner(ClamdAddress.parse(settings.clamd_address), timeout_s=2.0)
    policy = RetentionPolicy(
        job_records=timedelta(days=settings.job_retention_days),
        quarantine=timedelta(days=settings.quarantine_retention_days),
    )

    registry = CollectorRegistry()
    limits = reconcile_limits(settings)
    registry.register(
        RiftCollector(
            transport.queue_stats,
            sessions,
            scanner,
            utcnow,
            overdue=lambda: count_overdue_jobs(sessions, limits, utcnow()),
        )
    )
    port = collector_port or settings.collector_port
    start_http_server(port, addr=settings.collector_host, registry=registry)
    log.info("collector listening", extra={"port": port})

    grace = timedelta(seconds=settings.relay_grace_s)
    tasks = [
        PeriodicTask(
            "relay",
            settings.relay_interval_s,
            lambda: relay_outbox(sessions, transport.dispatcher, utcnow, grace),
        ),
        PeriodicTask(
            "retention", SWEEP_INTERVAL_S, lambda: sweep(sessions, blobs, policy, utcnow())
        ),
        PeriodicTask("stuck", STUCK_CHECK_INTERVAL_S, lambda: count_stuck_jobs(sessions, utcnow())),
        PeriodicTask("redelivery", REDELIVERY_INTERVAL_S, lambda: redeliver(transport.broker)),
        PeriodicTask(
            "reconciler",
            settings.reconcile_interval_s,
            Reconciler(
                settings, sessions, transport, final_failures=final_failures_counter(registry)
            ),
        ),
    ]
    if sentry:
        # Sentry Crons notices a scheduler that stops (actors/checkins.py).
        tasks = [
            PeriodicTask(t.name, t.interval_s, CheckedIn(t.name, t.interval_s, t.run))
            for t in tasks
        ]
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # Several instances may run (one per API host, say); only the lock holder does upkeep.
    leadership = leadership_for(settings.database_url)
    try:
        run_periodic(led_by(leadership, tasks), stop)
    finally:
        leadership.release()


if __name__ == "__main__":
    main()
