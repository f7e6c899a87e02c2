"""The project's own worker metrics; they share Dramatiq's multiprocess directory."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from service.domain.queues import ALL_JOB_KINDS
from service.domain.verdicts import FinalVerdict

TIME_TO_VERDICT_BUCKETS_S = (
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    600,
    900,
    1800,
    3600,
)


class WorkerMetrics:
    """Verdicts, scan verdicts, time to verdict and final job failures."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # In a worker the values go to Dramatiq's multiprocess files, which its exposition
        # server reads; the registry only matters for in-process tests.
        self.registry = registry or CollectorRegistry()
        self.verdicts = Counter(
            "rift_proof_verdicts", "Proof verdicts by outcome.", ["outcome"], registry=self.registry
        )
        self.time_to_verdict = Histogram(
            "rift_time_to_verdict_seconds",
            "Time from proof submission to its verdict.",
            buckets=TIME_TO_VERDICT_BUCKETS_S,
            registry=self.registry,
        )
        self.scan_verdicts = Counter(
            "rift_scan_verdicts", "Virus scan verdicts.", ["verdict"], registry=self.registry
        )
        self.final_failures = Counter(
            "rift_job_final_failures",
            "Jobs that failed for good (FAILED or DEAD).",
            ["actor", "queue"],
            registry=self.registry,
        )

        # Zero every fixed series at start: rate() over a series born at its first event
        # would miss that event.
        for outcome in ("auto_approved", "passed", "review"):
            self.verdicts.labels(outcome)
        for verdict in ("CLEAN", "INFECTED", "ERROR"):
            self.scan_verdicts.labels(verdict)
        for kind in ALL_JOB_KINDS:
            self.final_failures.labels(kind.actor_name, kind.queue_name)

    def observe_verdict(self, verdict: FinalVerdict | None) -> None:
        if verdict is None:
            return
        self.verdicts.labels(verdict.outcome).inc()
        elapsed = (verdict.decided_at - verdict.submitted_at).total_seconds()
        self.time_to_verdict.observe(max(elapsed, 0.0))
