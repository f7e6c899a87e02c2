"""Fixtures for tests that run several hosts against shared servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.databases import create_postgres_database, drop_postgres_database, migrate


@pytest.fixture(scope="module")
def shared_database() -> Iterator[str]:
    """PostgreSQL only: SQLite is one machine's file, which is what hosts cannot share."""
    url = create_postgres_database()
    migrate(url)
    yield url
    drop_postgres_database(url)
