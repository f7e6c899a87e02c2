"""The scheduler checks in to Sentry Crons for each periodic task when a DSN is set."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest

from actors.checkins import monitor_slug

from .sentry_inbox import SentryInbox
from .stack import Stack

pytestmark = pytest.mark.slow

TASKS = ("relay", "retention", "stuck", "redelivery", "reconciler")
CHECKIN_TIMEOUT_S = 20.0


def check_ins(inbox: SentryInbox) -> list[dict[str, Any]]:
    return [
        item.json()
        for envelope in list(inbox.envelopes)
        for item in envelope.items
        if item.type == "check_in"
    ]


def test_every_periodic_task_checks_in_once_with_its_schedule(
    monitoring_settings, tmp_path, redis_conn, sentry_inbox: SentryInbox
):
    # Given a scheduler reporting to a Sentry endpoint
    settings = replace(monitoring_settings, sentry_dsn=sentry_inbox.dsn)
    stack = Stack(settings, tmp_path, redis_conn)
    try:
        scheduler = stack.scheduler()
        stack.wait_ready(scheduler)

        # When its tasks have run for a few seconds (the relay runs every 0.2 s here)
        deadline = time.monotonic() + CHECKIN_TIMEOUT_S
        slugs = {monitor_slug(task) for task in TASKS}
        while {c["monitor_slug"] for c in check_ins(sentry_inbox)} < slugs:
            assert time.monotonic() < deadline, check_ins(sentry_inbox)
            time.sleep(0.2)
        time.sleep(2.0)
    finally:
        stack.stop_all()

    # Then each task has one monitor, checked in ok once (not once per run), on a schedule
    received = check_ins(sentry_inbox)
    per_slug = {slug: [c for c in received if c["monitor_slug"] == slug] for slug in slugs}
    for slug, checks in per_slug.items():
        assert [c["status"] for c in checks] == ["ok"], (slug, checks)
        schedule = checks[0]["monitor_config"]["schedule"]
        assert schedule["type"] == "interval" and schedule["unit"] == "minute"
    assert per_slug[monitor_slug("retention")][0]["monitor_config"]["schedule"]["value"] == 60
    assert per_slug[monitor_slug("relay")][0]["monitor_config"]["schedule"]["value"] == 1
