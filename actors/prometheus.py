"""Dramatiq's Prometheus middleware, with every actor's series present from boot.

Imported only by a worker that exports metrics: Dramatiq's module reads its
`dramatiq_prom_*` environment variables when it is imported.
"""

from __future__ import annotations

import dramatiq
from dramatiq.common import dq_name
from dramatiq.middleware.prometheus import Prometheus


class PrometheusFromBoot(Prometheus):
    """Export each declared actor's series at zero as soon as the worker process boots.

    Dramatiq creates a label set at its first event, and rate() cannot see the event that
    creates a series: the first retry or dead letter after a deploy would show on no
    dashboard and trip no alert.
    """

    def after_process_boot(self, broker: dramatiq.Broker) -> None:
        super().after_process_boot(broker)  # type: ignore[no-untyped-call]  # unannotated upstream
        for actor_name in broker.get_declared_actors():
            queue = broker.get_actor(actor_name).queue_name
            for counter in (
                self.total_messages,
                self.total_errored_messages,
                self.total_rejected_messages,
            ):
                counter.labels(queue, actor_name)
            # A retry is counted on the delay queue when scheduled, on the queue when due.
            for retry_queue in (dq_name(queue), queue):
                self.total_retried_messages.labels(retry_queue, actor_name)
            self.inprogress_messages.labels(queue, actor_name)
            self.message_durations.labels(queue, actor_name)
