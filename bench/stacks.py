"""Two worker stacks with the same no-op actor: the project's and Dramatiq's defaults.

`dramatiq bench.stacks:project` wires a worker exactly as `actors.broker:setup` does (job
tracking, heartbeat, Prometheus, the project's actors) and adds `bench_noop`;
`dramatiq bench.stacks:raw` is a RedisBroker with Dramatiq's default middleware only.
"""

from __future__ import annotations

from datetime import timedelta

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from actors.broker import setup
from service.domain.queues import JobKind
from service.settings import Settings

# Limits as loose as the real kinds': a no-op never comes near them.
NOOP = JobKind("bench_noop", "bench", time_limit=timedelta(minutes=2), max_age=timedelta(days=1))


def noop(subject_id: str) -> None:
    """Do nothing: what is left is the cost of the job system itself."""


def declare_noop(broker: dramatiq.Broker) -> dramatiq.Actor[[str], None]:
    declare = dramatiq.actor(broker=broker, actor_name=NOOP.actor_name, queue_name=NOOP.queue_name)
    return declare(noop)


def project() -> None:
    """The project's full worker wiring plus the no-op actor."""
    declare_noop(setup())


def raw_broker(settings: Settings | None = None) -> RedisBroker:
    settings = settings or Settings.from_env()
    return RedisBroker(url=settings.redis_url)  # type: ignore[no-untyped-call]


def raw() -> None:
    """Dramatiq out of the box on the same Redis: default middleware, no job records."""
    broker = raw_broker()
    dramatiq.set_broker(broker)
    declare_noop(broker)


def project_untracked() -> None:
    """The project's wiring without JobTracking: what the other middleware costs."""
    from actors.tracking import JobTracking

    broker = setup()
    broker.middleware[:] = [m for m in broker.middleware if type(m) is not JobTracking]
    declare_noop(broker)
