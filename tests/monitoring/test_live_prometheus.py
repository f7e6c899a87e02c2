"""Every dashboard panel and alert rule, evaluated by a real Prometheus scraping running Rift.

The API (gunicorn, two workers), one worker pool per queue, the scheduler's collector and
Prometheus (1 s scrapes, the committed alert rules) run as real processes. A short load
covers clean and infected files, a scan that fails for good and one that a retry repairs,
a backlog, a cancellation, a redelivered message and client errors. It runs in two waves
after every target has been scraped once: rate() cannot see the increment that creates a
series, nor one made before a process's first scrape.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from actors.broker import build_broker
from actors.dispatch import DramatiqDispatcher
from grafana import alerts, artefacts, dashboards, scrape_config
from service.db import SessionFactory
from service.domain.queues import CLEAN_UP_RIFT
from service.models import FINAL_JOB_STATES, Job, JobState
from service.settings import Settings
from tests.scanning.clamd_process import RunningClamd
from tests.scanning.samples import EICAR
from tests.support.flows import BUYER, DELIVERY_NOTE, funded_rift, submit
from tests.support.processes import free_port, wait_for

from .flaky_clamd import FAIL_EVERY_CONNECTION, FlakyClamd
from .stack import HttpClient, Service, Stack, bearer_headers, http

pytestmark = pytest.mark.slow

SCRAPE_INTERVAL_S = 1
#: Stands in for Grafana's $__rate_interval; covers the whole run.
RATE_WINDOW = "1m"
JOBS_SETTLE_TIMEOUT_S = 30.0
QUERY_DATA_TIMEOUT_S = 20.0
#: Labels Prometheus adds to every series; they say nothing about the panel's value.
TARGET_LABELS = {"job", "instance", "pool"}


def query(prometheus: Service, expr: str) -> dict[str, Any]:
    url = f"{prometheus.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    status, body = http("GET", url)
    reply: dict[str, Any] = json.loads(body)
    reply["http_status"] = status
    return reply


def api_get(prometheus: Service, path: str) -> dict[str, Any]:
    status, body = http("GET", prometheus.url + path)
    assert status == 200, body
    data: dict[str, Any] = json.loads(body)["data"]
    return data


def describe(result: list[dict[str, Any]]) -> str:
    """Render a vector as `label=value: number`, one entry per series, in a stable order."""
    parts = []
    for series in result:
        labels = ",".join(
            f"{k}={v}" for k, v in sorted(series["metric"].items()) if k not in TARGET_LABELS
        )
        value = float(series["value"][1])
        shown = "NaN" if math.isnan(value) else f"{value:.4g}"
        parts.append(f"{labels}: {shown}" if labels else shown)
    return "; ".join(sorted(parts))


def settled(sessions: SessionFactory, total: int, waiting: tuple[str, ...] = ()) -> bool:
    """Do `total` jobs exist, all final but those of the `waiting` actors?"""
    with sessions() as session:
        count = session.scalar(select(func.count()).select_from(Job)) or 0
        unfinished = session.scalars(
            select(Job.actor_name).where(Job.state.not_in(FINAL_JOB_STATES))
        ).all()
    return (count, sorted(unfinished)) == (total, sorted(waiting))


def drive_wave(client: HttpClient, settings: Settings, wave: int) -> int:
    """Submit clean and infected proof, cancel a rift, make client errors; return jobs made."""
    auth = bearer_headers(settings)
    note = f"{DELIVERY_NOTE}Reference: wave {wave}, {uuid.uuid4()}.\n"
    clean = funded_rift(client, auth, item_type="DIGITAL_GOODS")
    result = submit(
        client,
        auth,
        clean["id"],
        fields={"tracking_number": "1Z999AA10123456784", "text": note},
        files=[("note.txt", note.encode(), "text/plain")],
    )
    assert result.status_code == 202, result.text
    infected = funded_rift(client, auth)
    result = submit(client, auth, infected["id"], files=[("eicar.txt", EICAR, "text/plain")])
    assert result.status_code == 202, result.text
    cancelled = funded_rift(client, auth)
    result = client.simulate_post(
        f"/api/rifts/{cancelled['id']}/transitions", json={"to": "CANCELED"}, headers=auth(BUYER)
    )
    assert result.status_code == 200, result.text
    client_errors = [
        client.simulate_get("/api/rifts/no-such-rift", headers=auth(BUYER)),
        client.simulate_post("/api/rifts", json={"title": "no token"}),
        client.simulate_post("/api/rifts", json={"title": ""}, headers=auth(BUYER)),
    ]
    assert all(400 <= r.status_code < 500 for r in client_errors), [
        (r.status_code, r.text) for r in client_errors
    ]
    return 2 * 2 + 1  # a verification and a scan job per proof, one cleanup


def submit_file(client: HttpClient, settings: Settings) -> int:
    """Submit one text file as proof; return jobs made."""
    auth = bearer_headers(settings)
    rift = funded_rift(client, auth)
    note = f"{DELIVERY_NOTE}Reference: {uuid.uuid4()}.\n"
    result = submit(client, auth, rift["id"], files=[("note.txt", note.encode(), "text/plain")])
    assert result.status_code == 202, result.text
    return 2


def redeliver_a_finished_job(sessions: SessionFactory, settings: Settings) -> None:
    """Send a SUCCEEDED job's message again, as a broker does after a lost acknowledgement."""
    with sessions() as session:
        job = session.scalars(select(Job).where(Job.state == JobState.SUCCEEDED)).first()
        assert job is not None
    DramatiqDispatcher(build_broker(settings)).dispatch(job)


def test_every_panel_returns_data_and_every_alert_rule_evaluates(
    stack: Stack,
    monitoring_settings: Settings,
    monitoring_sessions: SessionFactory,
    clamd: RunningClamd,
    tmp_path: Path,
) -> None:
    settings, sessions = monitoring_settings, monitoring_sessions
    # Given the whole system, the scan pool behind a clamd connection that can fail, and
    # the cleanup pool not started yet, so that its queue builds a backlog
    flaky = FlakyClamd(clamd.port).__enter__()
    stack.cleanups.append(lambda: flaky.__exit__(None, None, None))
    behind_flaky = replace(settings, clamd_address=f"tcp://127.0.0.1:{flaky.port}")
    api = stack.api(workers=2, metrics_dir=tmp_path / "prom-api")
    verification = stack.pool(["verification"])
    scan = stack.pool(["scan"], settings=behind_flaky)
    collector = stack.scheduler()
    cleanup_port = free_port()
    config = scrape_config.render(
        scrape_config.Targets(
            api_port=api.port,
            collector_port=collector.port,
            verification_port=verification.port,
            scan_port=scan.port,
            cleanup_port=cleanup_port,
        ),
        scrape_interval_s=SCRAPE_INTERVAL_S,
        rule_files=(str(artefacts.ALERT_RULES),),
    )
    prometheus = stack.prometheus(config)
    stack.wait_ready(api, verification, scan, collector, prometheus)
    wait_for(
        lambda: len(query(prometheus, "up == 1")["data"]["result"]) == 4,
        10.0,
        "a first scrape of every running target",
    )
    time.sleep(SCRAPE_INTERVAL_S)
    client = HttpClient(api.url)
    backlog = (CLEAN_UP_RIFT.actor_name,)

    # When a first wave of load runs while the cleanup pool is down
    jobs = drive_wave(client, settings, wave=1)
    wait_for(lambda: settled(sessions, jobs, backlog), JOBS_SETTLE_TIMEOUT_S, "wave 1")
    # and a file comes while clamd hangs up on every scan: retried, then failed for good
    flaky.fail_next(FAIL_EVERY_CONNECTION)
    jobs += submit_file(client, settings)
    wait_for(lambda: settled(sessions, jobs, backlog), JOBS_SETTLE_TIMEOUT_S, "a failed scan")
    flaky.fail_next(0)
    time.sleep(2 * SCRAPE_INTERVAL_S)  # the backlog is scraped while it waits
    cleanup = stack.pool(["cleanup"], port=cleanup_port)
    stack.wait_ready(cleanup)
    wait_for(lambda: settled(sessions, jobs), JOBS_SETTLE_TIMEOUT_S, "the cleanup backlog")
    redeliver_a_finished_job(sessions, settings)
    time.sleep(2 * SCRAPE_INTERVAL_S)
    # and a second wave moves every counter again, with a scan that a retry repairs
    flaky.fail_next(1)
    jobs += drive_wave(client, settings, wave=2)
    wait_for(lambda: settled(sessions, jobs), JOBS_SETTLE_TIMEOUT_S, "wave 2")
    # Every attempt of the failed scan, plus the repaired one (more if a busy machine made
    # a wave-1 scan overlap the outage).
    assert flaky.hung_up >= settings.max_retries + 1 + 1
    time.sleep(2 * SCRAPE_INTERVAL_S)

    # Then every alert expression parses and evaluates (a result means its condition holds)
    alert_values = []
    for name, expr in alerts.alert_exprs().items():
        reply = query(prometheus, expr)
        assert reply["status"] == "success", f"alert {name}: {reply}"
        alert_values.append(f"alert {name}: {describe(reply['data']['result']) or '(none)'}")

    # and every query of every panel returns data
    panels = dashboards.panel_queries(rate_interval=RATE_WINDOW)
    values: dict[str, list[str]] = {}

    def every_query_has_data() -> bool:
        values.clear()
        empty = False
        for title, exprs in panels.items():
            for expr in exprs:
                reply = query(prometheus, expr)
                assert reply["status"] == "success", f"panel {title!r}: {expr}\n{reply}"
                result = reply["data"]["result"]
                empty = empty or not result
                values.setdefault(title, []).append(describe(result) or "(no data)")
        return not empty

    report_path = tmp_path / "panel-values.txt"
    try:
        wait_for(
            every_query_has_data, QUERY_DATA_TIMEOUT_S, "data for every panel query", interval_s=1.0
        )
    finally:
        report = "\n".join(
            [f"{title}: " + " | ".join(shown) for title, shown in values.items()] + alert_values
        )
        report_path.write_text(report + "\n")
        print(f"\nPanel values ({report_path}):\n{report}")

    # and the backlog that waited for the cleanup pool was seen while it waited
    for gauge in ("rift_queue_depth", "rift_queue_oldest_message_age_seconds"):
        expr = f'max_over_time({gauge}{{queue="cleanup"}}[{RATE_WINDOW}])'
        peak = query(prometheus, expr)["data"]["result"]
        line = f"peak during the run: {expr} = {describe(peak)}"
        with report_path.open("a") as report_file:
            report_file.write(line + "\n")
        print(line)
        assert peak and float(peak[0]["value"][1]) > 0, peak

    # and no gauge counts fewer than zero things in progress (a skipped message included)
    for gauge in ("dramatiq_messages_inprogress", "rift_http_requests_in_flight"):
        series = query(prometheus, gauge)["data"]["result"]
        assert series and all(float(s["value"][1]) >= 0 for s in series), series

    # and Prometheus loaded every alert rule and evaluates it without error
    def rules_healthy() -> bool:
        groups = api_get(prometheus, "/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert sorted(r["name"] for r in rules) == sorted(a.name for a in alerts.ALERTS)
        return all(r["health"] == "ok" for r in rules)

    wait_for(rules_healthy, 10.0, "every alert rule evaluated with health ok", interval_s=0.5)
    targets = api_get(prometheus, "/api/v1/targets")["activeTargets"]
    assert sorted((t["labels"]["job"], t["health"]) for t in targets) == [
        ("rift-api", "up"),
        ("rift-collector", "up"),
        ("rift-workers", "up"),
        ("rift-workers", "up"),
        ("rift-workers", "up"),
    ], targets
