"""Shared fixtures: real PostgreSQL and SQLite, real Redis, real clamd, real worker processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import falcon.testing
import pytest
import redis
import sqlalchemy as sa

from actors.transport import connect_transport
from service.api.bootstrap import api_context as api_context_for
from service.api.context import ApiContext
from service.auth import mint_token
from service.db import SessionFactory, create_db_engine, create_session_factory
from service.domain.queues import QUEUE_NAMES
from service.domain.users import Role
from service.settings import Settings
from tests.scanning.clamd_process import RunningClamd, start_clamd, stop_process
from tests.support.api import api_test_client
from tests.support.brokers import (
    create_vhost,
    delete_queues,
    delete_vhost,
    vhost_url,
    workers_alive,
)
from tests.support.databases import (
    create_postgres_database,
    drop_postgres_database,
    empty_tables,
    migrate,
)
from tests.support.object_store import RunningS3, start_s3_server
from tests.support.pg_proxy import PostgresProxy
from tests.support.processes import ManagedProcess, wait_for, worker_argv
from tests.support.settings import test_settings
from tests.support.summary import reported

REDIS_TEST_DBS = range(1, 16)
REDIS_CLAIM_TTL_S = 3 * 3600
BACKENDS = os.environ.get("RIFT_TEST_DATABASES", "sqlite,postgresql").split(",")
WORKER_READY_TIMEOUT_S = 30.0


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures the fuzz and abuse suites reported (tests/support/summary.py)."""
    lines = reported()
    if lines:
        terminalreporter.section("suite figures")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the RabbitMQ variants (and `postgresql_only` tests) on PostgreSQL only.

    A deployment on RabbitMQ is a multi-host one, on PostgreSQL; the broker and the blob
    store are independent, and each is already tested against the other's default. The
    rest of the broker x database x store grid would add minutes to CI and test nothing new.
    """
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        params = callspec.params if callspec is not None else {}
        redundant = params.get("broker") == "rabbitmq" and (
            params.get("database_url") != "postgresql" or params.get("blob_store") == "s3"
        )
        # A test about PostgreSQL's own behaviour is deselected on SQLite, not skipped.
        if item.get_closest_marker("postgresql_only") and "database_url" in params:
            redundant = redundant or params["database_url"] != "postgresql"
        (dropped if redundant else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A freshly migrated database per backend; PostgreSQL absent fails the run."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'rift.sqlite3'}"
        migrate(url)
        yield url
        return
    url = create_postgres_database()
    migrate(url)
    yield url
    drop_postgres_database(url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: sa.Engine) -> Iterator[SessionFactory]:
    yield create_session_factory(engine)
    empty_tables(engine)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis database number of our own: concurrent test sessions never flush each other."""
    claims = redis.Redis(host="127.0.0.1", port=6379, db=0)
    try:
        claims.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis on 127.0.0.1:6379 is required for these tests: {exc}")
    for db in REDIS_TEST_DBS:
        if claims.set(f"rift:test-db-claim:{db}", os.getpid(), nx=True, ex=REDIS_CLAIM_TTL_S):
            break
    else:
        pytest.fail("every Redis test database is claimed by another test session")
    yield f"redis://127.0.0.1:6379/{db}"
    claims.delete(f"rift:test-db-claim:{db}")


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningClamd]:
    running = start_clamd(tmp_path_factory.mktemp("clamd"))
    yield running
    stop_process(running.pid)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningS3]:
    """A real S3 API server (moto's, as a process) for the object-store parametrisations."""
    running = start_s3_server(tmp_path_factory.mktemp("s3"))
    yield running
    running.process.stop()


@pytest.fixture
def blob_store(request: pytest.FixtureRequest) -> str:
    """Which blob store `settings` configures: "local" unless a test parametrises it
    (`@pytest.mark.parametrize("blob_store", ["local", "s3"], indirect=True)`)."""
    return str(getattr(request, "param", "local"))


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    """A RabbitMQ vhost of our own: concurrent test sessions never share a queue."""
    vhost = create_vhost()
    yield vhost_url(vhost)
    delete_vhost(vhost)


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> str:
    """Which broker `settings` selects: "redis" unless a test parametrises it
    (`@pytest.mark.parametrize("broker", BROKERS, indirect=True)`); on "rabbitmq", this
    session's vhost, its queues deleted before and after the test."""
    name = str(getattr(request, "param", "redis"))
    if name == "rabbitmq":
        url: str = request.getfixturevalue("rabbitmq_url")
        delete_queues(url)
        request.addfinalizer(lambda: delete_queues(url))
    return name


@pytest.fixture
def settings(
    database_url: str,
    redis_url: str,
    tmp_path: Path,
    clamd: RunningClamd,
    blob_store: str,
    broker: str,
    engine: sa.Engine,
    request: pytest.FixtureRequest,
) -> Iterator[Settings]:
    broker_url = request.getfixturevalue("rabbitmq_url") if broker == "rabbitmq" else None
    settings = test_settings(
        database_url, redis_url, tmp_path / "data", clamd.port, broker_url=broker_url
    )
    if blob_store == "s3":
        s3: RunningS3 = request.getfixturevalue("s3_server")
        settings = s3.settings_for(settings)
    yield settings
    # Rows written by a test's own processes (gunicorn, workers), not only through the
    # `sessions` fixture, must not reach the next test on this session's database.
    empty_tables(engine)


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment that makes a child process read these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROMETHEUS", "dramatiq"))}
    env.update(settings.to_env(), LOG_FORMAT="console", dramatiq_worker_timeout="50")
    env.update(extra)
    return env


@pytest.fixture
def api_context(
    settings: Settings, sessions: SessionFactory, redis_conn: redis.Redis
) -> Iterator[ApiContext]:
    transport = connect_transport(settings, sessions)
    yield api_context_for(settings, sessions, transport)
    transport.close()


@pytest.fixture
def client(api_context: ApiContext) -> falcon.testing.TestClient:
    return api_test_client(api_context)


Token = Callable[..., dict[str, str]]


@pytest.fixture
def auth(settings: Settings) -> Token:
    """auth("alice") -> headers with a bearer token for alice (role "user" unless given)."""

    def headers(user_id: str, role: Role = Role.USER, ttl_s: float = 600) -> dict[str, str]:
        token = mint_token(user_id, role, settings.jwt_secret, ttl=timedelta(seconds=ttl_s))
        return {"Authorization": f"Bearer {token}"}

    return headers


WorkerFactory = Callable[..., ManagedProcess]


@pytest.fixture
def start_worker(
    settings: Settings, tmp_path: Path, redis_conn: redis.Redis
) -> Iterator[WorkerFactory]:
    """Start real `dramatiq actors.broker:setup` processes; all stopped after the test."""
    started: list[ManagedProcess] = []

    def start(
        queues: list[str] | None = None,
        *,
        settings_override: Settings | None = None,
        processes: int = 1,
        threads: int = 2,
        **env: str,
    ) -> ManagedProcess:
        queues = queues or list(QUEUE_NAMES)
        prom_dir = tmp_path / f"prom-{len(started)}"
        prom_dir.mkdir()
        process_env = settings_env(
            settings_override or settings,
            PROMETHEUS_MULTIPROC_DIR=str(prom_dir),
            dramatiq_prom_db=str(prom_dir),
            dramatiq_prom_host="127.0.0.1",
            dramatiq_prom_port=env.pop("prom_port", "0"),
            **env,
        )
        worker = ManagedProcess(
            worker_argv(queues, processes=processes, threads=threads),
            process_env,
            tmp_path / f"worker-{len(started)}.log",
        ).start()
        started.append(worker)
        ready_settings = settings_override or settings
        try:
            wait_for(
                lambda: (
                    worker.alive() is False or workers_alive(ready_settings, queues[0]) >= processes
                ),
                WORKER_READY_TIMEOUT_S,
                f"{processes} worker process(es) consuming {queues[0]}",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- worker output ---\n{worker.output()}") from None
        assert worker.alive(), f"worker exited early:\n{worker.output()}"
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def proxy() -> Iterator[PostgresProxy]:
    """A proxy in front of the machine's PostgreSQL that can break a COMMIT (pg_proxy.py)."""
    proxy = PostgresProxy()
    yield proxy
    proxy.close()
