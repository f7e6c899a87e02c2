"""Fixtures of the chaos suite: a whole system per test on servers of its own.

Budget: the suite runs in CI (`-m chaos`) and must stay under about 8 minutes on 2 CPUs;
each scenario states its outage length and load, and the summary prints every figure.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from service.db import create_db_engine, create_session_factory
from tests.chaos.clamd_proxy import ClamdProxy
from tests.chaos.servers import PostgresServer, RedisServer
from tests.chaos.system import ChaosSystem, Figures
from tests.monitoring.stack import Stack
from tests.scanning.clamd_process import RunningClamd
from tests.support.databases import migrate
from tests.support.settings import test_settings

_FIGURES: list[Figures] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _FIGURES:
        terminalreporter.section("chaos figures")
        for figures in _FIGURES:
            terminalreporter.write_line(figures.line())


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Figures]]:
    made: list[Figures] = []

    def make(scenario: str) -> Figures:
        made.append(Figures(scenario))
        return made[-1]

    yield make
    for one in made:
        print(one.line())  # in the test's captured output too
    _FIGURES.extend(made)


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    directory = Path(tempfile.mkdtemp(prefix="rift-chaos-postgres-"))
    server = PostgresServer(directory).init().start()
    yield server
    server.stop()
    shutil.rmtree(directory, ignore_errors=True)


SystemFactory = Callable[..., ChaosSystem]


@pytest.fixture
def chaos_system(tmp_path: Path, clamd: RunningClamd) -> Iterator[SystemFactory]:
    """make(appendonly=True, database_url=None, **settings) -> a started ChaosSystem."""
    cleanups: list[Callable[[], object]] = []

    def make(
        *,
        appendonly: bool = True,
        database_url: str | None = None,
        pools: tuple[str, ...] = ("verification", "scan"),
        **overrides: Any,
    ) -> ChaosSystem:
        redis_server = RedisServer(tmp_path / "redis", appendonly=appendonly).start()
        cleanups.append(redis_server.stop)
        proxy = ClamdProxy(clamd.port).__enter__()
        cleanups.append(lambda: proxy.__exit__(None, None, None))
        url = database_url or f"sqlite:///{tmp_path / 'rift.sqlite3'}"
        migrate(url)
        settings = test_settings(
            url,
            redis_server.url,
            tmp_path / "data",
            proxy.port,
            # Production's own maintenance chance: redelivery must come from the scheduler.
            broker_maintenance_chance=10_000,
            # Production's relay grace: with none, the relay races the API's own dispatch
            # and sends a second copy of fresh jobs (harmless, but it blurs attempts).
            relay_grace_s=5.0,
            reconcile_interval_s=0.5,
            reconcile_queued_after_s=10.0,
            **overrides,
        )
        engine = create_db_engine(url)
        cleanups.append(engine.dispose)
        client = redis.Redis.from_url(redis_server.url)
        stack = Stack(settings, tmp_path, client)
        cleanups.append(stack.stop_all)
        system = ChaosSystem(
            settings, stack, create_session_factory(engine), redis_server, client, proxy
        )
        return system.start(pools=pools)

    yield make
    for cleanup in reversed(cleanups):
        cleanup()
