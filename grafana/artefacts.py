"""Every generated monitoring file and its expected content."""

from __future__ import annotations

from pathlib import Path

from grafana import alerts, dashboards, scrape_config

REPO = Path(__file__).resolve().parent.parent
DASHBOARDS_DIR = REPO / "grafana" / "dashboards"
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERT_RULES = PROMETHEUS_DIR / "rules" / "rift-alerts.yml"
ALERT_TESTS = PROMETHEUS_DIR / "tests" / "rift-alerts.test.yml"


def expected() -> dict[Path, str]:
    """Return each generated file's path and the content generation gives it."""
    files = {
        DASHBOARDS_DIR / dashboards.file_name(s): dashboards.render(s)
        for s in dashboards.DASHBOARDS
    }
    files[PROMETHEUS_CONFIG] = scrape_config.render()
    files[ALERT_RULES] = alerts.render()
    return files


def stale() -> list[Path]:
    """Return the generated files whose committed content differs from generation."""
    return [
        path
        for path, content in expected().items()
        if not path.exists() or path.read_text(encoding="utf-8") != content
    ]


def write() -> list[Path]:
    """Write the stale files; return them."""
    files = expected()
    changed = stale()
    for path in changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[path], encoding="utf-8")
    return changed
