from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import falcon.testing
import pytest
import redis

from service.db import SessionFactory, create_db_engine, create_session_factory
from service.settings import Settings
from tests.scanning.clamd_process import RunningClamd
from tests.support.api import api_test_client, real_api_context
from tests.support.databases import migrate
from tests.support.settings import test_settings

from .sentry_inbox import SentryInbox
from .stack import Stack, bearer_headers

Promtool = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def promtool() -> Promtool:
    """Run promtool from Debian's prometheus package; its absence is a failure, not a skip."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not on PATH; install Debian's prometheus package (make deps)")

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
        )

    return run


# Monitoring behaves the same on both database backends, and its tests start real processes:
# they run once, on SQLite, each test on a fresh copy of one migrated database.
@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("monitoring-db") / "template.sqlite3"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def monitoring_settings(
    migrated_sqlite: Path, redis_url: str, clamd: RunningClamd, tmp_path: Path
) -> Settings:
    database = tmp_path / "rift.sqlite3"
    with sqlite3.connect(migrated_sqlite) as source, sqlite3.connect(database) as copy:
        source.backup(copy)
    return test_settings(f"sqlite:///{database}", redis_url, tmp_path / "data", clamd.port)


@pytest.fixture
def monitoring_sessions(monitoring_settings: Settings) -> Iterator[SessionFactory]:
    engine = create_db_engine(monitoring_settings.database_url)
    yield create_session_factory(engine)
    engine.dispose()


@pytest.fixture
def api_client(
    monitoring_settings: Settings, monitoring_sessions: SessionFactory, redis_conn: redis.Redis
) -> falcon.testing.TestClient:
    """The API in this process, dispatching to the real Redis broker."""
    return api_test_client(real_api_context(monitoring_settings, monitoring_sessions))


@pytest.fixture
def auth_headers(monitoring_settings: Settings) -> Callable[..., dict[str, str]]:
    return bearer_headers(monitoring_settings)


@pytest.fixture
def stack(
    monitoring_settings: Settings, tmp_path: Path, redis_conn: redis.Redis
) -> Iterator[Stack]:
    running = Stack(monitoring_settings, tmp_path, redis_conn)
    yield running
    running.stop_all()


@pytest.fixture
def sentry_inbox() -> Iterator[SentryInbox]:
    inbox = SentryInbox().start()
    yield inbox
    inbox.stop()
