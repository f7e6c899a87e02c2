"""Rift's Prometheus alert rules, rendered to deploy/prometheus/rules/rift-alerts.yml.

Kept in Python so that the alerts and the dashboards share their PromQL and so that tests
can read every expression without a YAML parser. promtool unit-tests the rendered file
(deploy/prometheus/tests/rift-alerts.test.yml).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from grafana.promql import rate_by_queue
from service.domain.retention import STUCK_AFTER

FINAL_FAILURE_RATIO_MAX = 0.05
ATTEMPT_ERROR_RATIO_MAX = 0.25
BACKLOG_AGE_MAX_S = 600
SCAN_ERROR_RATIO_MAX = 0.10
API_5XX_RATIO_MAX = 0.05
TIME_TO_VERDICT_P95_MAX_S = 600
STUCK_AFTER_MIN = round(STUCK_AFTER.total_seconds() / 60)


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: Literal["critical", "warning"]
    summary: str
    description: str
    runbook: str


ALERTS: tuple[Alert, ...] = (
    Alert(
        name="RiftJobFailureRatioHigh",
        expr=(
            "sum by (queue) (rate(rift_job_final_failures_total[15m]))\n/\n"
            f"{rate_by_queue('dramatiq_messages_total', '15m')}\n"
            f"> {FINAL_FAILURE_RATIO_MAX}"
        ),
        for_="10m",
        severity="critical",
        summary="Jobs on queue {{ $labels.queue }} are failing for good",
        description=(
            "{{ $value | humanizePercentage }} of messages on queue {{ $labels.queue }} ended"
            " in a final failure over the last 15 minutes (threshold"
            f" {FINAL_FAILURE_RATIO_MAX:.0%})."
        ),
        runbook=(
            "Sentry has one event per finally failed job with its actor and rift id; fix the"
            " cause, then retry the FAILED/DEAD jobs from the operator job list."
        ),
    ),
    Alert(
        name="RiftJobErrorRatioHigh",
        expr=(
            f"{rate_by_queue('dramatiq_message_errors_total', '15m')}\n/\n"
            f"{rate_by_queue('dramatiq_messages_total', '15m')}\n"
            f"> {ATTEMPT_ERROR_RATIO_MAX}"
        ),
        for_="15m",
        severity="warning",
        summary="Many attempts on queue {{ $labels.queue }} raise errors",
        description=(
            "{{ $value | humanizePercentage }} of attempts on queue {{ $labels.queue }} raised"
            " over the last 15 minutes, retried ones included (threshold"
            f" {ATTEMPT_ERROR_RATIO_MAX:.0%})."
        ),
        runbook=(
            "Read the workers' logs for the failing actor; a dependency (database, broker,"
            " clamd) is the usual cause. Retries hide it until they run out."
        ),
    ),
    Alert(
        name="RiftQueueBacklogStale",
        expr=f"max by (queue) (rift_queue_oldest_message_age_seconds)\n> {BACKLOG_AGE_MAX_S}",
        for_="5m",
        severity="critical",
        summary="Queue {{ $labels.queue }} has messages waiting too long",
        description=(
            "The oldest message on queue {{ $labels.queue }} has waited"
            " {{ $value | humanizeDuration }} (threshold"
            f" {BACKLOG_AGE_MAX_S // 60} minutes)."
        ),
        runbook=(
            "Compare depth with throughput on the Rift / Queue overview dashboard; scale the"
            " pool's processes/threads or find the actor that is slow."
        ),
    ),
    Alert(
        name="RiftDeadLettersGrowing",
        expr="max by (queue) (delta(rift_queue_dead_letters[15m]))\n> 0",
        for_="0m",
        severity="warning",
        summary="Messages are being dead-lettered on queue {{ $labels.queue }}",
        description=(
            "The dead-letter queue of {{ $labels.queue }} grew by {{ $value | humanize }}"
            " messages in the last 15 minutes."
        ),
        runbook=(
            "List DEAD jobs from the operator job list and the matching Sentry events;"
            " retry them once the cause is fixed."
        ),
    ),
    Alert(
        name="RiftQueueWithoutWorkers",
        expr=(
            "max by (queue) (rift_queue_depth) > 0\n"
            "unless on (queue)\n"
            "max by (queue) (rift_workers_alive) > 0"
        ),
        for_="2m",
        severity="critical",
        summary="Queue {{ $labels.queue }} has work and no live workers",
        description=(
            "{{ $value }} messages wait on queue {{ $labels.queue }} and no worker consuming"
            " it has reported alive."
        ),
        runbook=(
            "`supervisorctl status` on the worker host; start the {{ $labels.queue }} pool"
            " and read its log for the crash."
        ),
    ),
    Alert(
        name="RiftScannerDown",
        expr="max(rift_scanner_up) == 0",
        for_="2m",
        severity="critical",
        summary="The virus scanner (clamd) is unreachable",
        description=(
            "The collector cannot reach clamd; scans are retried and proofs wait for their verdict."
        ),
        runbook="`clamdscan --ping 1` from the worker host; restart clamd and check its log.",
    ),
    Alert(
        name="RiftScannerErroring",
        expr=(
            'sum(rate(rift_scan_verdicts_total{verdict="ERROR"}[15m]))\n/\n'
            "sum(rate(rift_scan_verdicts_total[15m]))\n"
            f"> {SCAN_ERROR_RATIO_MAX}"
        ),
        for_="10m",
        severity="warning",
        summary="Virus scans are ending in errors",
        description=(
            "{{ $value | humanizePercentage }} of scans ended with an ERROR verdict over the"
            f" last 15 minutes (threshold {SCAN_ERROR_RATIO_MAX:.0%})."
        ),
        runbook=(
            "Read the scan pool's log and clamd's log; size limits (StreamMaxLength) and"
            " timeouts are the usual causes."
        ),
    ),
    Alert(
        name="RiftApiErrorRatioHigh",
        expr=(
            'sum(rate(rift_http_requests_total{status=~"5.."}[5m]))\n/\n'
            "sum(rate(rift_http_requests_total[5m]))\n"
            f"> {API_5XX_RATIO_MAX}"
        ),
        for_="5m",
        severity="critical",
        summary="The API answers with server errors",
        description=(
            "{{ $value | humanizePercentage }} of API requests returned 5xx over the last"
            f" 5 minutes (threshold {API_5XX_RATIO_MAX:.0%})."
        ),
        runbook=(
            "Sentry has each 5xx; the Rift / Proof verification dashboard shows the route."
            " Check the database and the blob store first."
        ),
    ),
    Alert(
        name="RiftTimeToVerdictSlow",
        expr=(
            "histogram_quantile(0.95, sum by (le) (rate(rift_time_to_verdict_seconds_bucket[30m])))"
            f"\n> {TIME_TO_VERDICT_P95_MAX_S}"
        ),
        for_="15m",
        severity="warning",
        summary="Proofs take too long to get a verdict",
        description=(
            "95% of proofs got their verdict within {{ $value | humanizeDuration }} over the"
            f" last 30 minutes (threshold {TIME_TO_VERDICT_P95_MAX_S // 60} minutes)."
        ),
        runbook=(
            "Check the verification and scan queues' backlog age and the outbox on the"
            " dashboards; a slow scanner or too few workers is the usual cause."
        ),
    ),
    Alert(
        name="RiftTargetDown",
        expr='up{job=~"rift-.*"} == 0',
        for_="5m",
        severity="critical",
        summary="Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }}",
        description=(
            "The process is down or not serving metrics; alerts on its metrics cannot"
            " fire while it is unscraped."
        ),
        runbook="`supervisorctl status`; start the process and read its log.",
    ),
    Alert(
        name="RiftOutboxStalled",
        expr="min_over_time(rift_outbox_undispatched[10m]) > 0",
        for_="5m",
        severity="warning",
        summary="Jobs are not being handed to the broker",
        description=(
            "At least {{ $value }} jobs have stayed undispatched for 15 minutes; the outbox"
            " relay is not running or the broker is unreachable."
        ),
        runbook="Check the scheduler process and the broker; the relay dispatches on its next run.",
    ),
    Alert(
        name="RiftJobsStuck",
        expr="max(rift_jobs_stuck) > 0",
        for_="15m",
        severity="warning",
        summary="Jobs are RUNNING past their time limit",
        description=(
            f"{{{{ $value }}}} jobs have been RUNNING for more than {STUCK_AFTER_MIN} minutes,"
            " past every job kind's time limit; their worker probably died without the"
            " message being redelivered."
        ),
        runbook="The scheduler's stuck-job sweep should requeue them; check that it runs.",
    ),
    Alert(
        name="RiftJobsOverdue",
        expr="sum by (queue, state) (rift_jobs_overdue) > 0",
        for_="10m",
        severity="warning",
        summary="{{ $labels.state }} jobs on {{ $labels.queue }} sit past their kind's limits",
        description=(
            "{{ $value }} jobs have waited longer than their kind allows for 10 minutes. The"
            " scheduler's reconciler sends such jobs again every few seconds: it is not"
            " running, the broker refuses it, or (QUEUED) the queue is backed up."
        ),
        runbook=(
            "Check the scheduler (`supervisorctl status scheduler`; its log says"
            " 're-dispatched overdue jobs') and the broker; POST /api/admin/jobs/{id}/retry"
            " sends one job again."
        ),
    ),
)


def alert_exprs() -> dict[str, str]:
    """Return each alert's name and PromQL expression."""
    return {alert.name: alert.expr for alert in ALERTS}


def render() -> str:
    """Return the rules file, in Prometheus's rule-file YAML."""
    q = json.dumps  # a JSON string is a valid YAML scalar
    out = [
        "# Generated by `python -m grafana` from grafana/alerts.py; do not edit.\n",
        "groups:\n",
        "  - name: rift-alerts\n",
        "    rules:\n",
    ]
    for alert in ALERTS:
        expr = "".join(f"          {line}\n" for line in alert.expr.splitlines())
        out.append(
            f"      - alert: {alert.name}\n"
            f"        expr: |-\n{expr}"
            f"        for: {alert.for_}\n"
            "        labels:\n"
            f"          severity: {alert.severity}\n"
            "        annotations:\n"
            f"          summary: {q(alert.summary)}\n"
            f"          description: {q(alert.description)}\n"
            f"          runbook: {q(alert.runbook)}\n"
        )
    return "".join(out)
