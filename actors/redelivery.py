"""Hand a dead worker's messages back to their queues within seconds, not minutes.

Dramatiq's Redis broker redelivers the messages a dead worker had taken only during
"maintenance", which it runs on a random 1% of broker calls per queue (the
`maintenance_chance`), and only once the worker's heartbeat is older than the
heartbeat timeout (60 s by default). Measured here before this module: a job whose
worker was SIGKILLed ran again after 63-124 s (verification) and 345-392 s (scan).

Two halves fix that:
- every worker process stamps Dramatiq's heartbeat set from a thread of its own
  (`actors/heartbeat.py`), so a worker busy with long jobs is never taken for dead, and
  the heartbeat timeout can be short (`BROKER_HEARTBEAT_TIMEOUT_MS`, 15 s by default);
- the scheduler calls `redeliver_dead_workers_messages` every second: one call per queue
  of Dramatiq's own dispatch script with maintenance forced on and a command that does
  nothing else ("requeue" with no message ids).

So a killed worker's job runs again about heartbeat timeout + 1 s after the kill.
"""

from __future__ import annotations

from collections.abc import Sequence

from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis

REDELIVERY_INTERVAL_S = 1.0


def redeliver_dead_workers_messages(broker: RedisBroker, queues: Sequence[str]) -> None:
    """Run Dramatiq's maintenance once per queue (and its delay queue), right now."""
    dispatch = broker.scripts["dispatch"]
    for queue in queues:
        for name in (queue, f"{queue}.DQ"):
            dispatch(
                keys=[broker.namespace],
                args=[
                    "requeue",
                    current_millis(),
                    name,
                    broker.broker_id,
                    broker.heartbeat_timeout,
                    broker.dead_message_ttl,
                    1,  # do_maintenance
                    broker._max_unpack_size(),  # type: ignore[no-untyped-call]
                ],
            )
