"""Every dashboard panel and alert rule, evaluated by a real Prometheus scraping running Rift.

The API (gunicorn, two workers), one worker pool per queue, the scheduler's collector and
Prometheus (1 s scrapes, the committed alert rules) run as real processes; a short load
covers clean, infected and vanished files, a cancellation and client errors, in two waves
so that every counter has moved between scrapes.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from actors.broker import build_broker
from actors.dispatch import DramatiqDispatcher
from grafana import alerts, artefacts, dashboards, scrape_config
from service.blobs import LocalBlobStore
from service.db import SessionFactory
from service.models import FINAL_JOB_STATES, Asset, Job, JobState
from service.settings import Settings
from tests.scanning.samples import EICAR
from tests.support.flows import BUYER, DELIVERY_NOTE, funded_rift, submit
from tests.support.processes import free_port, wait_for

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


def jobs_settled(sessions: SessionFactory, expected: int) -> bool:
    with sessions() as session:
        total = session.scalar(select(func.count()).select_from(Job)) or 0
        unfinished = session.scalar(
            select(func.count()).select_from(Job).where(Job.state.not_in(FINAL_JOB_STATES))
        )
    return total >= expected and unfinished == 0


def drive_wave(
    client: HttpClient, settings: Settings, wave: int, lose_a_file: bool = False
) -> tuple[int, list[str]]:
    """Submit clean and infected files, cancel a rift, make client errors.

    Returns the number of jobs created and the ids of the assets whose files are to be
    removed before they are scanned (a disk losing a file: the scan retries, then fails
    for good and the message goes to the dead letters).
    """
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
    jobs = 2 * 2  # a verification and a scan job per proof
    doomed: list[str] = []
    if lose_a_file:
        lost = funded_rift(client, auth)
        result = submit(
            client, auth, lost["id"], files=[("lost.txt", note.upper().encode(), "text/plain")]
        )
        assert result.status_code == 202, result.text
        doomed = [result.json["asset_ids"][0]]
        jobs += 2
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
    return jobs + 1, doomed


def redeliver_a_finished_job(sessions: SessionFactory, settings: Settings) -> None:
    """Send a SUCCEEDED job's message again, as a broker does after a lost acknowledgement."""
    with sessions() as session:
        job = session.scalars(select(Job).where(Job.state == JobState.SUCCEEDED)).first()
        assert job is not None
    DramatiqDispatcher(build_broker(settings)).dispatch(job)


def remove_blobs(sessions: SessionFactory, settings: Settings, asset_ids: list[str]) -> None:
    blobs = LocalBlobStore(settings.blob_dir, settings.quarantine_dir)
    with sessions() as session:
        for asset_id in asset_ids:
            key = session.get_one(Asset, asset_id).storage_key
            assert key is not None and blobs.delete(key)


def test_every_panel_returns_data_and_every_alert_rule_evaluates(
    stack: Stack,
    monitoring_settings: Settings,
    monitoring_sessions: SessionFactory,
    tmp_path: Path,
) -> None:
    settings, sessions = monitoring_settings, monitoring_sessions
    # Given the whole system, with the scan pool held back until files are waiting for it
    api = stack.api(workers=2, metrics_dir=tmp_path / "prom-api")
    verification = stack.pool(["verification"])
    cleanup = stack.pool(["cleanup"])
    collector = stack.scheduler()
    scan_port = free_port()
    config = scrape_config.render(
        scrape_config.Targets(
            api_port=api.port,
            collector_port=collector.port,
            verification_port=verification.port,
            scan_port=scan_port,
            cleanup_port=cleanup.port,
        ),
        scrape_interval_s=SCRAPE_INTERVAL_S,
        rule_files=(str(artefacts.ALERT_RULES),),
    )
    prometheus = stack.prometheus(config)
    stack.wait_ready(api, verification, cleanup, collector, prometheus)
    client = HttpClient(api.url)

    # When a first wave of load runs, with a file lost before the scanner gets to it
    jobs, doomed = drive_wave(client, settings, wave=1, lose_a_file=True)
    remove_blobs(sessions, settings, doomed)
    time.sleep(2 * SCRAPE_INTERVAL_S)  # the backlog is scraped while the scan pool is down
    scan = stack.pool(["scan"], port=scan_port)
    stack.wait_ready(scan)
    wait_for(lambda: jobs_settled(sessions, jobs), JOBS_SETTLE_TIMEOUT_S, "first wave of jobs")
    redeliver_a_finished_job(sessions, settings)
    time.sleep(2 * SCRAPE_INTERVAL_S)
    # and a second wave moves every counter again
    more, _ = drive_wave(client, settings, wave=2)
    wait_for(
        lambda: jobs_settled(sessions, jobs + more), JOBS_SETTLE_TIMEOUT_S, "second wave of jobs"
    )
    time.sleep(2 * SCRAPE_INTERVAL_S)

    # Then every alert expression parses and evaluates
    for name, expr in alerts.alert_exprs().items():
        reply = query(prometheus, expr)
        assert reply["status"] == "success", f"alert {name}: {reply}"

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

    try:
        wait_for(
            every_query_has_data, QUERY_DATA_TIMEOUT_S, "data for every panel query", interval_s=1.0
        )
    finally:
        report = "\n".join(f"{title}: " + " | ".join(shown) for title, shown in values.items())
        (tmp_path / "panel-values.txt").write_text(report + "\n")
        print(f"\nPanel values ({tmp_path / 'panel-values.txt'}):\n{report}")

    # and no gauge counts fewer than zero things in progress (a skipped message included)
    for gauge in ("dramatiq_messages_inprogress", "rift_http_requests_in_flight"):
        series = query(prometheus, gauge)["data"]["result"]
        assert series and all(float(s["value"][1]) >= 0 for s in series), series

    # and Prometheus loaded every alert rule and evaluates it without error
    def rules_healthy() -> bool:
        groups = api_get(prometheus, "/api/v1/rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        assert {r["name"] for r in rules} == {a.name for a in alerts.ALERTS}
        return all(r["health"] == "ok" for r in rules)

    wait_for(rules_healthy, 10.0, "every alert rule evaluated with health ok", interval_s=0.5)
    targets = api_get(prometheus, "/api/v1/targets")["activeTargets"]
    assert {(t["labels"]["job"], t["health"]) for t in targets} == {
        ("rift-api", "up"),
        ("rift-workers", "up"),
        ("rift-collector", "up"),
    }, targets
