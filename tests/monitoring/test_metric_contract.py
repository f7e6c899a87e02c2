"""Dashboards and alerts reference only the metrics, labels and label values Rift exports."""

from __future__ import annotations

import re

import pytest

from grafana import alerts, dashboards
from grafana.metric_contract import METRIC_NAMES, label_values, series_labels
from grafana.selectors import Matcher, Selector, selectors

# Exported but deliberately not charted, with the reason.
NOT_CHARTED = {
    # Dramatiq increments it under "queue.DQ" and decrements it under "queue", in whichever
    # process handles the message; rift_queue_delayed is the reliable count.
    "dramatiq_delayed_messages_inprogress",
}


def _all_exprs() -> dict[str, str]:
    exprs = {
        f"panel {title!r} query {i}": expr
        for title, queries in dashboards.panel_queries().items()
        for i, expr in enumerate(queries)
    }
    exprs.update({f"alert {name}": expr for name, expr in alerts.alert_exprs().items()})
    return exprs


def _literal_values(matcher: Matcher) -> list[str]:
    """Return the values a matcher names, when it names them (literal or `a|b` regex)."""
    if matcher.op in ("=", "!="):
        return [matcher.value]
    if re.fullmatch(r"[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*", matcher.value):
        return matcher.value.split("|")
    return []


@pytest.mark.parametrize(("where", "expr"), sorted(_all_exprs().items()))
def test_query_selects_only_contract_series_labels_and_values(where: str, expr: str) -> None:
    known = series_labels()
    found = selectors(expr)
    assert found, f"{where}: no series selected"
    for selector in found:
        assert selector.name in known, f"{where}: {selector.name} is not in the metric contract"
        for matcher in selector.matchers:
            assert matcher.label in known[selector.name], (
                f"{where}: {selector.name} has no label {matcher.label!r}"
            )
            vocabulary = label_values(selector.name).get(matcher.label)
            if vocabulary is not None:
                unknown = set(_literal_values(matcher)) - vocabulary
                assert not unknown, f"{where}: {selector.name}{{{matcher.label}}} {unknown}"


def test_dashboards_chart_every_contract_metric() -> None:
    charted = {
        s.name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
        for queries in dashboards.panel_queries().values()
        for expr in queries
        for s in selectors(expr)
    }
    assert METRIC_NAMES - NOT_CHARTED - charted == set()


def test_selectors_finds_names_matchers_and_skips_functions_clauses_and_strings() -> None:
    expr = (
        'sum by (queue) (label_replace(rate(dramatiq_messages_total{queue_name=~".+\\\\.DQ",'
        ' actor_name!="x"}[5m]), "queue", "$1", "queue_name", "(.*)"))\n'
        "/ on (queue) group_left max without (instance) (rift_queue_depth offset 5m) > 0.5"
    )
    assert selectors(expr) == [
        Selector(
            "dramatiq_messages_total",
            (Matcher("queue_name", "=~", ".+\\.DQ"), Matcher("actor_name", "!=", "x")),
        ),
        Selector("rift_queue_depth", ()),
    ]


def test_selectors_reads_a_name_given_as_a_matcher() -> None:
    assert selectors('{__name__="up", job="rift-api"} == 0') == [
        Selector("up", (Matcher("job", "=", "rift-api"),))
    ]


def test_contract_check_catches_a_wrong_label_and_an_unknown_value() -> None:
    known = series_labels()
    (wrong_label,) = selectors('rate(dramatiq_messages_total{queue="scan"}[1m])')
    assert wrong_label.matchers[0].label not in known[wrong_label.name]
    (wrong_value,) = selectors('rift_scan_verdicts_total{verdict="infected"}')
    assert "infected" not in label_values(wrong_value.name)["verdict"]
