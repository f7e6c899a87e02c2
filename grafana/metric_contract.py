"""The metrics Rift exports: the one list dashboards and alerts may reference."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from service.domain.job_queries import IN_FLIGHT_STATES
from service.domain.queues import ACTOR_NAMES, QUEUE_NAMES

MetricKind = Literal["counter", "gauge", "histogram"]

#: Labels Prometheus attaches at scrape time (see grafana/scrape_config.py).
TARGET_LABELS = frozenset({"job", "instance", "pool"})

#: Series Prometheus synthesises for every target; not exported by Rift.
SCRAPE_SERIES = frozenset({"up"})


@dataclass(frozen=True)
class Metric:
    """One exported metric family, named as it appears in PromQL."""

    name: str
    kind: MetricKind
    labels: tuple[str, ...] = ()
    #: Closed label vocabularies; a dashboard matching another value is a typo.
    values: dict[str, frozenset[str]] = field(default_factory=dict)

    def series(self) -> dict[str, frozenset[str]]:
        """Return each series name this family exposes, with its labels."""
        labels = frozenset(self.labels) | TARGET_LABELS
        if self.kind != "histogram":
            return {self.name: labels}
        return {
            f"{self.name}_bucket": labels | {"le"},
            f"{self.name}_sum": labels,
            f"{self.name}_count": labels,
        }


_DRAMATIQ = ("queue_name", "actor_name")
_QUEUES = frozenset(QUEUE_NAMES)
_ACTORS = frozenset(ACTOR_NAMES)

METRICS: tuple[Metric, ...] = (
    # Dramatiq's Prometheus middleware, one exposition server per worker pool.
    Metric("dramatiq_messages_total", "counter", _DRAMATIQ),
    Metric("dramatiq_message_errors_total", "counter", _DRAMATIQ),
    Metric("dramatiq_message_retries_total", "counter", _DRAMATIQ),
    Metric("dramatiq_message_rejects_total", "counter", _DRAMATIQ),
    Metric("dramatiq_messages_inprogress", "gauge", _DRAMATIQ),
    Metric("dramatiq_delayed_messages_inprogress", "gauge", _DRAMATIQ),
    Metric("dramatiq_message_duration_milliseconds", "histogram", _DRAMATIQ),
    # API, multiprocess under gunicorn.
    Metric("rift_http_requests_total", "counter", ("method", "route", "status")),
    Metric("rift_http_request_duration_seconds", "histogram", ("method", "route")),
    Metric("rift_http_requests_in_flight", "gauge", ("method", "route")),
    Metric("rift_proof_submissions_total", "counter"),
    # Workers, project's own.
    Metric(
        "rift_proof_verdicts_total",
        "counter",
        ("outcome",),
        {"outcome": frozenset({"auto_approved", "passed", "review"})},
    ),
    Metric("rift_time_to_verdict_seconds", "histogram"),
    Metric(
        "rift_scan_verdicts_total",
        "counter",
        ("verdict",),
        {"verdict": frozenset({"CLEAN", "INFECTED", "ERROR"})},
    ),
    Metric(
        "rift_job_final_failures_total",
        "counter",
        ("actor", "queue"),
        {"actor": _ACTORS, "queue": _QUEUES},
    ),
    # Collector process.
    Metric("rift_queue_depth", "gauge", ("queue",), {"queue": _QUEUES}),
    Metric("rift_queue_delayed", "gauge", ("queue",), {"queue": _QUEUES}),
    Metric("rift_queue_dead_letters", "gauge", ("queue",), {"queue": _QUEUES}),
    Metric("rift_queue_oldest_message_age_seconds", "gauge", ("queue",), {"queue": _QUEUES}),
    # Unfinished jobs only: a count of finished ones would scan all history per scrape.
    Metric(
        "rift_jobs",
        "gauge",
        ("state", "actor"),
        {"state": frozenset(s.value for s in IN_FLIGHT_STATES), "actor": _ACTORS},
    ),
    Metric("rift_workers_alive", "gauge", ("queue",), {"queue": _QUEUES}),
    Metric("rift_scanner_up", "gauge"),
    Metric("rift_outbox_undispatched", "gauge"),
    Metric("rift_jobs_stuck", "gauge"),
    Metric("rift_jobs_overdue", "gauge", ("queue", "state"), {"queue": _QUEUES}),
)

METRIC_NAMES = frozenset(m.name for m in METRICS)


def series_labels() -> dict[str, frozenset[str]]:
    """Return every series name a query may select, mapped to the labels it carries."""
    series: dict[str, frozenset[str]] = dict.fromkeys(SCRAPE_SERIES, TARGET_LABELS)
    for metric in METRICS:
        series.update(metric.series())
    return series


def label_values(series_name: str) -> dict[str, frozenset[str]]:
    """Return the closed label vocabularies of the family a series belongs to."""
    for metric in METRICS:
        if series_name in metric.series():
            return metric.values
    return {}
