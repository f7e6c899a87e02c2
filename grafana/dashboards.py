"""Rift's Grafana dashboards, built with grafana-foundation-sdk.

The JSON in grafana/dashboards/ is generated from here (`python -m grafana`) and committed;
tests check that regenerating reproduces it, and the live test evaluates panel_queries().
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.builders.common import (
    ReduceDataOptions,
    VizLegendOptions,
    VizTooltipOptions,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    LegendDisplayMode,
    LegendPlacement,
    SortOrder,
    TooltipDisplayMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DashboardLinkType,
    DataSourceRef,
    ValueMap,
    ValueMappingResult,
)

from grafana.alerts import STUCK_AFTER_MIN
from grafana.promql import by_queue, quantile, rate_by_queue, ratio_or_zero, retries_by_queue

DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
#: Grafana's own step-aware window; panel_queries() substitutes a fixed one.
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: Literal["timeseries", "stat"] = "timeseries"
    width: int = 12
    up_down: bool = False


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    description: str
    rows: tuple[Row, ...]


def _final_failures_by_queue(window: str) -> str:
    return f"sum by (queue) (rate(rift_job_final_failures_total[{window}]))"


def _verdict_share(outcome: str) -> str:
    return ratio_or_zero(
        f'sum(rate(rift_proof_verdicts_total{{outcome="{outcome}"}}[{RATE}]))',
        f"sum(rate(rift_proof_verdicts_total[{RATE}]))",
    )


QUEUE_OVERVIEW = DashboardSpec(
    uid="rift-queue-overview",
    title="Rift / Queue overview",
    description="Dramatiq queues and worker pools: backlog, throughput, failures, latency.",
    rows=(
        Row(
            "Backlog",
            (
                Panel(
                    "Queue depth",
                    "Messages ready on each queue (the broker's count), not counting delayed ones.",
                    (Query("max by (queue) (rift_queue_depth)", "{{queue}}"),),
                    width=6,
                ),
                Panel(
                    "Oldest waiting message age",
                    "How long the oldest ready message has waited. Alert: 10 minutes.",
                    (Query("max by (queue) (rift_queue_oldest_message_age_seconds)", "{{queue}}"),),
                    unit="s",
                    width=6,
                ),
                Panel(
                    "Delayed messages",
                    "Messages on each delay queue: retries waiting for their backoff.",
                    (Query("max by (queue) (rift_queue_delayed)", "{{queue}}"),),
                    width=6,
                ),
                Panel(
                    "Workers alive",
                    "Worker processes consuming each queue that reported alive recently.",
                    (Query("max by (queue) (rift_workers_alive)", "{{queue}}"),),
                    width=6,
                ),
            ),
        ),
        Row(
            "Throughput and failures",
            (
                Panel(
                    "Throughput",
                    "Messages processed per second (every attempt, retries included).",
                    (Query(rate_by_queue("dramatiq_messages_total", RATE), "{{queue}}"),),
                    unit="ops",
                ),
                Panel(
                    "Failure ratio",
                    "Final failures and failed attempts (retried ones included) per message"
                    " processed.",
                    (
                        Query(
                            ratio_or_zero(
                                _final_failures_by_queue(RATE),
                                rate_by_queue("dramatiq_messages_total", RATE),
                            ),
                            "final failures {{queue}}",
                        ),
                        Query(
                            ratio_or_zero(
                                rate_by_queue("dramatiq_message_errors_total", RATE),
                                rate_by_queue("dramatiq_messages_total", RATE),
                            ),
                            "failed attempts {{queue}}",
                        ),
                    ),
                    unit="percentunit",
                ),
                Panel(
                    "Retries scheduled",
                    "Retries scheduled per second after a failed attempt.",
                    (Query(retries_by_queue(RATE), "{{queue}}"),),
                    unit="ops",
                    width=8,
                ),
                Panel(
                    "Final failures",
                    "Jobs failed for good, by actor, and messages Dramatiq dead-lettered.",
                    (
                        Query(
                            f"sum by (queue, actor) (rate(rift_job_final_failures_total[{RATE}]))",
                            "{{actor}} ({{queue}})",
                        ),
                        Query(
                            rate_by_queue("dramatiq_message_rejects_total", RATE),
                            "dead-lettered {{queue}}",
                        ),
                    ),
                    unit="ops",
                    width=8,
                ),
                Panel(
                    "Dead letters",
                    "Messages on each dead-letter queue; they expire after Dramatiq's TTL.",
                    (Query("max by (queue) (rift_queue_dead_letters)", "{{queue}}"),),
                    width=8,
                ),
            ),
        ),
        Row(
            "Processing",
            (
                Panel(
                    "Messages in progress",
                    "Messages being processed right now, across every worker process.",
                    (Query(by_queue("dramatiq_messages_inprogress"), "{{queue}}"),),
                    width=8,
                ),
                Panel(
                    "Message duration p50 / p95 / p99",
                    "Time an actor spends on one message.",
                    tuple(
                        Query(
                            quantile(
                                q,
                                "dramatiq_message_duration_milliseconds_bucket",
                                RATE,
                                by=("queue_name",),
                            ),
                            f"p{round(q * 100)} {{{{queue_name}}}}",
                        )
                        for q in (0.5, 0.95, 0.99)
                    ),
                    unit="ms",
                    width=8,
                ),
                Panel(
                    "Jobs in flight by state",
                    "Job records not yet finished: PENDING (in the outbox), QUEUED, RUNNING,"
                    " RETRYING. A job leaves it when it finishes: Throughput and Final failures"
                    " count those.",
                    (Query("sum by (state) (rift_jobs)", "{{state}}"),),
                    width=8,
                ),
            ),
        ),
    ),
)

PROOF_VERIFICATION = DashboardSpec(
    uid="rift-proof-verification",
    title="Rift / Proof verification",
    description="Proofs from submission to verdict: outcomes, scanning, the API, the outbox.",
    rows=(
        Row(
            "Proofs",
            (
                Panel(
                    "Proof submissions",
                    "Proofs accepted by the API per second.",
                    (Query(f"sum(rate(rift_proof_submissions_total[{RATE}]))", "submissions"),),
                    unit="reqps",
                    width=8,
                ),
                Panel(
                    "Verdicts by outcome",
                    "Verdicts per second: auto_approved, passed or sent to review.",
                    (
                        Query(
                            f"sum by (outcome) (rate(rift_proof_verdicts_total[{RATE}]))",
                            "{{outcome}}",
                        ),
                    ),
                    unit="ops",
                    width=8,
                ),
                Panel(
                    "Time to verdict p50 / p95",
                    "From submission to verdict. Alert: p95 over 10 minutes.",
                    tuple(
                        Query(
                            quantile(q, "rift_time_to_verdict_seconds_bucket", RATE),
                            f"p{round(q * 100)}",
                        )
                        for q in (0.5, 0.95)
                    ),
                    unit="s",
                    width=8,
                ),
                Panel(
                    "Review rate",
                    "Share of verdicts sent to manual review.",
                    (Query(_verdict_share("review"), "review"),),
                    unit="percentunit",
                ),
                Panel(
                    "Auto-approve rate",
                    "Share of verdicts approved without review.",
                    (Query(_verdict_share("auto_approved"), "auto-approved"),),
                    unit="percentunit",
                ),
            ),
        ),
        Row(
            "Virus scanning",
            (
                Panel(
                    "Scan verdicts",
                    "Files scanned per second by clamd's verdict.",
                    (
                        Query(
                            f"sum by (verdict) (rate(rift_scan_verdicts_total[{RATE}]))",
                            "{{verdict}}",
                        ),
                    ),
                    unit="ops",
                ),
                Panel(
                    "Infected files (24h)",
                    "Files found infected and quarantined over the last 24 hours.",
                    (
                        Query(
                            'sum(increase(rift_scan_verdicts_total{verdict="INFECTED"}[24h]))',
                            "infected",
                        ),
                    ),
                    kind="stat",
                    width=6,
                ),
                Panel(
                    "Scanner",
                    "Whether the collector reaches clamd.",
                    (Query("max(rift_scanner_up)", "clamd"),),
                    kind="stat",
                    width=6,
                    up_down=True,
                ),
            ),
        ),
        Row(
            "API",
            (
                Panel(
                    "API requests",
                    "Requests per second by route template.",
                    (
                        Query(
                            f"sum by (method, route) (rate(rift_http_requests_total[{RATE}]))",
                            "{{method}} {{route}}",
                        ),
                    ),
                    unit="reqps",
                ),
                Panel(
                    "API latency p95",
                    "95th percentile of request duration by route template.",
                    (
                        Query(
                            quantile(
                                0.95,
                                "rift_http_request_duration_seconds_bucket",
                                RATE,
                                by=("method", "route"),
                            ),
                            "{{method}} {{route}}",
                        ),
                    ),
                    unit="s",
                ),
                Panel(
                    "API 5xx ratio",
                    "Share of requests answered with a server error. Alert: 5% overall.",
                    (
                        Query(
                            ratio_or_zero(
                                "sum by (route) (rate("
                                f'rift_http_requests_total{{status=~"5.."}}[{RATE}]))',
                                f"sum by (route) (rate(rift_http_requests_total[{RATE}]))",
                            ),
                            "{{route}}",
                        ),
                    ),
                    unit="percentunit",
                ),
                Panel(
                    "API requests in flight",
                    "Requests being served right now, across gunicorn workers.",
                    (
                        Query(
                            "sum by (method, route) (rift_http_requests_in_flight)",
                            "{{method}} {{route}}",
                        ),
                    ),
                ),
            ),
        ),
        Row(
            "Pipeline health",
            (
                Panel(
                    "Outbox undispatched",
                    "Jobs committed but not yet handed to the broker; the relay drains them.",
                    (Query("max(rift_outbox_undispatched)", "undispatched"),),
                ),
                Panel(
                    "Stuck jobs",
                    f"Jobs RUNNING for more than {STUCK_AFTER_MIN} minutes, past every job kind's"
                    " time limit.",
                    (Query("max(rift_jobs_stuck)", "stuck"),),
                ),
                Panel(
                    "Jobs waiting for redelivery",
                    "Jobs past their kind's limits (QUEUED, RETRYING or RUNNING): the"
                    " scheduler's reconciler sends them again within seconds.",
                    (Query("sum by (queue, state) (rift_jobs_overdue)", "{{queue}} {{state}}"),),
                ),
            ),
        ),
    ),
)

DASHBOARDS: tuple[DashboardSpec, ...] = (QUEUE_OVERVIEW, PROOF_VERIFICATION)


def _target(query: Query, ref_id: str) -> prometheus.Dataquery:
    return (
        prometheus.Dataquery()
        .datasource(DATASOURCE)
        .expr(query.expr)
        .legend_format(query.legend)
        .ref_id(ref_id)
        .range()
    )


def _panel(spec: Panel, panel_id: int) -> timeseries.Panel | stat.Panel:
    built: timeseries.Panel | stat.Panel
    if spec.kind == "stat":
        built = (
            stat.Panel()
            .height(8)
            .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
            .color_mode(BigValueColorMode.VALUE)
            .graph_mode(BigValueGraphMode.AREA)
        )
        if spec.up_down:
            built = built.mappings(
                [
                    ValueMap(
                        {
                            "0": ValueMappingResult(text="DOWN", color="red", index=0),
                            "1": ValueMappingResult(text="UP", color="green", index=1),
                        }
                    )
                ]
            )
    else:
        built = (
            timeseries.Panel()
            .height(8)
            .legend(
                VizLegendOptions()
                .display_mode(LegendDisplayMode.LIST)
                .placement(LegendPlacement.BOTTOM)
                .show_legend(True)
            )
            .tooltip(VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING))
            .fill_opacity(10)
        )
        # Counts and rates start at 0; ratios also end at 100%.
        built = built.min(0).max(1) if spec.unit == "percentunit" else built.min(0)
    built = (
        built.id(panel_id)
        .title(spec.title)
        .description(spec.description)
        .datasource(DATASOURCE)
        .unit(spec.unit)
        .span(spec.width)
    )
    for index, query in enumerate(spec.queries):
        built = built.with_target(_target(query, chr(ord("A") + index)))
    return built


def build(spec: DashboardSpec) -> dashboard.Dashboard:
    """Return the SDK builder for one dashboard."""
    board = (
        dashboard.Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.description)
        .tags(["rift"])
        .editable()
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("browser")
        .link(
            dashboard.DashboardLink("Rift dashboards")
            .type(DashboardLinkType.DASHBOARDS)
            .tags(["rift"])
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
        )
    )
    panel_id = 0
    for row in spec.rows:
        panel_id += 1
        board = board.with_row(dashboard.Row(row.title).id(panel_id))
        for panel in row.panels:
            panel_id += 1
            board = board.with_panel(_panel(panel, panel_id))
    return board


def render(spec: DashboardSpec) -> str:
    """Return a dashboard's JSON as committed: sorted keys, two-space indent."""
    return json.dumps(build(spec).build(), cls=JSONEncoder, sort_keys=True, indent=2) + "\n"


def file_name(spec: DashboardSpec) -> str:
    return f"{spec.uid}.json"


def panel_queries(rate_interval: str = "1m") -> dict[str, list[str]]:
    """Return each panel's title and PromQL, with Grafana's $__rate_interval made concrete.

    Read back from the rendered JSON, so it is what Grafana will run.
    """
    queries: dict[str, list[str]] = {}
    for spec in DASHBOARDS:
        for panel in json.loads(render(spec))["panels"]:
            if panel["type"] == "row":
                continue
            title = panel["title"]
            if title in queries:
                raise ValueError(f"two panels are titled {title!r}")
            queries[title] = [t["expr"].replace(RATE, rate_interval) for t in panel["targets"]]
    return queries
