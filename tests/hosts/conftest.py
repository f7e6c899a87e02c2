"""Fixtures for tests that run several hosts against shared servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.brokers import BROKERS, delete_queues
from tests.support.databases import create_postgres_database, drop_postgres_database, migrate


@pytest.fixture(scope="module")
def shared_database() -> Iterator[str]:
    """PostgreSQL only: SQLite is one machine's file, which is what hosts cannot share."""
    url = create_postgres_database()
    migrate(url)
    yield url
    drop_postgres_database(url)


@pytest.fixture(params=BROKERS)
def hosts_broker_url(request: pytest.FixtureRequest) -> str | None:
    """The broker every host shares: None for Redis, else this session's RabbitMQ vhost.

    A parameter of its own rather than tests/conftest.py's `broker`: the grid pruning there
    is for suites run over database x blob store, and this test runs on exactly one of each
    (PostgreSQL and S3, what several hosts need).
    """
    if request.param == "redis":
        return None
    url: str = request.getfixturevalue("rabbitmq_url")
    delete_queues(url)
    request.addfinalizer(lambda: delete_queues(url))
    return url
