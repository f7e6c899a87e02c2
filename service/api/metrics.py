"""Per-route request metrics, correct under gunicorn's several worker processes."""

from __future__ import annotations

import os
import time
from typing import Any

import falcon
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prom_multiprocess

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UNMATCHED_ROUTE = "unmatched"
# A client picks the method: any other string is counted as "other", so a scanner sending
# random methods cannot grow the label set without bound.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "other"


def method_label(method: str) -> str:
    """The method as a bounded metric label."""
    return method if method in KNOWN_METHODS else OTHER_METHOD


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ApiMetrics:
    """The API's metric objects; in multiprocess mode values live in shared files."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rift_http_requests",
            "HTTP requests by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "rift_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "rift_http_requests_in_flight",
            "HTTP requests being served.",
            ["method", "route"],
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.submissions = Counter(
            "rift_proof_submissions",
            "Proof submissions accepted (202, not replays).",
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        if multiprocess_dir():
            registry = CollectorRegistry()
            prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Count and time every request by its route template, never by its raw path."""

    def __init__(self, metrics: ApiMetrics) -> None:
        self.metrics = metrics

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, params: Any
    ) -> None:
        route = req.uri_template or UNMATCHED_ROUTE
        req.context.metrics_route = route
        req.context.metrics_started = time.perf_counter()
        self.metrics.in_flight.labels(method_label(req.method), route).inc()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool
    ) -> None:
        route = req.context.get("metrics_route")
        started = req.context.get("metrics_started")
        if route is None or started is None:
            route, started = UNMATCHED_ROUTE, None
        else:
            self.metrics.in_flight.labels(method_label(req.method), route).dec()
        status = resp.status_code if isinstance(resp.status_code, int) else 500
        self.metrics.requests.labels(method_label(req.method), route, str(status)).inc()
        if started is not None:
            self.metrics.latency.labels(method_label(req.method), route).observe(
                time.perf_counter() - started
            )


class MetricsResource:
    def __init__(self, metrics: ApiMetrics) -> None:
        self.metrics = metrics

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = CONTENT_TYPE_LATEST
        resp.data = self.metrics.exposition()
