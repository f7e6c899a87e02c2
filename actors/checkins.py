"""Sentry Crons check-ins for the scheduler's periodic work, so a scheduler that stops is
noticed even where Prometheus is not watching.

Each task (relay, reconciler, redelivery, sweeps) is one Sentry monitor, `rift-<task>`,
declared on its first check-in (an interval schedule, upserted by the SDK). Tasks that run
every few seconds check in at most once a minute: a missed minute is what Sentry alerts
on, and a check-in per run would be thousands an hour.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from sentry_sdk.crons import capture_checkin
from sentry_sdk.crons.consts import MonitorStatus

CHECKIN_EVERY_S = 60.0
# How late (minutes) a check-in may be before Sentry counts the run as missed.
CHECKIN_MARGIN_MIN = 5


def monitor_slug(task: str) -> str:
    return f"rift-{task}"


class CheckedIn:
    """Run a periodic task and tell Sentry how it went: ok at most once a minute, an
    error every time it raises (the error itself propagates to the scheduler's loop)."""

    def __init__(
        self,
        task: str,
        interval_s: float,
        run: Callable[[], object],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.slug = monitor_slug(task)
        self.run = run
        self.monotonic = monotonic
        every_s = max(interval_s, CHECKIN_EVERY_S)
        self.every_s = every_s
        self.config = {
            "schedule": {"type": "interval", "value": math.ceil(every_s / 60), "unit": "minute"},
            "checkin_margin": CHECKIN_MARGIN_MIN,
            "max_runtime": max(1, math.ceil(every_s / 60)),
        }
        self._last_ok: float | None = None

    def __call__(self) -> object:
        started = self.monotonic()
        try:
            result = self.run()
        except Exception:
            self._check_in(MonitorStatus.ERROR, started)
            raise
        if self._last_ok is None or started - self._last_ok >= self.every_s:
            self._check_in(MonitorStatus.OK, started)
            self._last_ok = started
        return result

    def _check_in(self, status: str, started: float) -> None:
        capture_checkin(
            monitor_slug=self.slug,
            status=status,
            duration=self.monotonic() - started,
            monitor_config=self.config,  # type: ignore[arg-type]
        )
