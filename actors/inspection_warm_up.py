"""Warm the file inspection up when a verification worker boots, not on its first proof.

The inspection fork server checks a sample of every accepted type before its first fork
(service/verification/warm_up.py): about half a second on an idle machine, several under
load. Started lazily, that lands on the first proof each worker process checks, and on
every proof that arrives meanwhile; started at boot, in the background, it is usually
done before the first message. A job that arrives earlier waits for the same start.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

log = logging.getLogger(__name__)


class InspectionWarmUp(Middleware):
    """Call `prepare` in a thread of its own once a worker consuming `queue` has booted."""

    def __init__(self, prepare: Callable[[], None], queue: str) -> None:
        self.prepare = prepare
        self.queue = queue

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        consumed = worker.consumer_whitelist or broker.get_declared_queues()
        if self.queue in consumed:
            threading.Thread(target=self._prepare, name="inspection-warm-up", daemon=True).start()

    def _prepare(self) -> None:
        try:
            self.prepare()
        except Exception:
            # The first job starts it again, and retries if it cannot.
            log.warning("inspection warm-up failed at boot", exc_info=True)
