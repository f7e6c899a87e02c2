"""promtool validates the Prometheus config, the alert rules, their unit tests and every
dashboard query (offline: each panel expression becomes a recording rule)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from grafana import alerts, artefacts, dashboards, scrape_config

from .conftest import Promtool


def test_committed_prometheus_config_is_valid(promtool: Promtool) -> None:
    result = promtool("check", "config", artefacts.PROMETHEUS_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 1 rule files found" in result.stdout


def test_rendered_test_variant_of_the_config_is_valid(promtool: Promtool, tmp_path: Path) -> None:
    config = tmp_path / "prometheus.yml"
    config.write_text(
        scrape_config.render(
            scrape_config.Targets(api_port=18000, collector_port=19300),
            scrape_interval_s=1,
            rule_files=(str(artefacts.ALERT_RULES),),
        )
    )
    result = promtool("check", "config", config)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_are_valid(promtool: Promtool) -> None:
    result = promtool("check", "rules", artefacts.ALERT_RULES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts.ALERTS)} rules found" in result.stdout


def test_alert_rule_unit_tests_pass(promtool: Promtool) -> None:
    result = promtool("test", "rules", artefacts.ALERT_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    text = artefacts.ALERT_TESTS.read_text()
    silent = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts: \[\]", text))
    firing = set(re.findall(r"alertname: (\w+)\n\s+exp_alerts:\n\s+- exp_labels:", text))
    names = {alert.name for alert in alerts.ALERTS}
    assert names - silent == set(), "alerts without a not-firing case"
    assert names - firing == set(), "alerts without a firing case"


def _rules_file(exprs: list[str], path: Path) -> Path:
    # JSON is YAML, so no YAML library is needed to write a rules file.
    rules = [{"record": f"rift_dashboard_query_{i}", "expr": e} for i, e in enumerate(exprs)]
    path.write_text(json.dumps({"groups": [{"name": "dashboard-queries", "rules": rules}]}))
    return path


def test_every_dashboard_query_is_valid_promql(promtool: Promtool, tmp_path: Path) -> None:
    exprs = [e for q in dashboards.panel_queries().values() for e in q]
    result = promtool("check", "rules", _rules_file(exprs, tmp_path / "queries.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_query_check_rejects_invalid_promql(promtool: Promtool, tmp_path: Path) -> None:
    broken = "sum by (queue (rate(dramatiq_messages_total[1m]))"
    result = promtool("check", "rules", _rules_file([broken], tmp_path / "broken.yml"))
    assert result.returncode != 0
