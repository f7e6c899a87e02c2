"""`rift queues`: depth, delayed, dead letters, oldest waiting age and live workers."""

from __future__ import annotations

import argparse
import json

from actors.transport import connect_transport
from service.cli.command import Command, CommandError
from service.db import create_db_engine, create_session_factory
from service.settings import Settings
from service.web.links import ConsoleLinks


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def _run(args: argparse.Namespace, settings: Settings) -> None:
    engine = create_db_engine(settings.database_url)
    transport = connect_transport(settings, create_session_factory(engine))
    try:
        snapshot = transport.queue_stats.snapshot()
    except Exception as exc:  # the broker's client errors differ between Redis and RabbitMQ
        raise CommandError(f"the broker does not answer: {exc}") from None
    finally:
        transport.broker.close()
        engine.dispose()
    if args.json:
        print(json.dumps({"queues": snapshot}, indent=2))
        return
    print(f"{'queue':<14} {'waiting':>8} {'delayed':>8} {'dead':>6} {'oldest s':>9} {'workers':>8}")
    for q in snapshot:
        print(
            f"{q['queue']!s:<14} {q['depth']!s:>8} {q['delayed']!s:>8} {q['dead_letters']!s:>6} "
            f"{float(str(q['oldest_age_s'])):>9.1f} {q['workers_alive']!s:>8}"
        )
    for url, title in ConsoleLinks(settings.grafana_url, None).dashboards():
        print(f"dashboard {title}: {url}")


COMMAND = Command(
    name="queues",
    help="queue depth, delayed, dead letters, oldest age and workers (the console's Queues)",
    run=_run,
    add_arguments=_add_arguments,
)
