"""The committed dashboards, scrape config and alert rules are what the generators produce."""

from __future__ import annotations

import json

from grafana import artefacts, dashboards, scrape_config


def test_regenerating_reproduces_every_committed_file() -> None:
    assert artefacts.stale() == [], "run `python -m grafana` and commit the result"


def test_no_dashboard_json_is_left_over_from_a_removed_dashboard() -> None:
    committed = set(artefacts.DASHBOARDS_DIR.glob("*.json"))
    assert committed == {p for p in artefacts.expected() if p.suffix == ".json"}


def test_dashboards_have_stable_uids_and_the_fixed_datasource() -> None:
    for spec in dashboards.DASHBOARDS:
        board = json.loads(dashboards.render(spec))
        assert board["uid"] == spec.uid
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
            assert all(t["datasource"]["uid"] == "prometheus" for t in panel["targets"])


def test_panel_ids_are_unique_within_each_dashboard() -> None:
    for spec in dashboards.DASHBOARDS:
        ids = [p["id"] for p in json.loads(dashboards.render(spec))["panels"]]
        assert len(ids) == len(set(ids)), spec.uid


def test_panel_queries_lists_every_panel_with_a_concrete_rate_window() -> None:
    queries = dashboards.panel_queries(rate_interval="30s")
    panels = [p for s in dashboards.DASHBOARDS for r in s.rows for p in r.panels]
    assert list(queries) == [p.title for p in panels]
    for title, exprs in queries.items():
        assert exprs, title
        assert all("$" not in e.replace('"$1"', "") for e in exprs), title
    assert "[30s]" in queries["Throughput"][0]


def test_prometheus_config_variant_uses_the_given_interval_ports_and_rules() -> None:
    text = scrape_config.render(
        scrape_config.Targets(api_port=18000, scan_port=19192),
        scrape_interval_s=1,
        rule_files=("/tmp/rules/rift-alerts.yml",),
    )
    assert "scrape_interval: 1s" in text
    assert "evaluation_interval: 1s" in text
    assert '"127.0.0.1:18000"' in text
    assert '"127.0.0.1:19192"' in text
    assert '"127.0.0.1:9191"' in text
    assert '- "/tmp/rules/rift-alerts.yml"' in text
