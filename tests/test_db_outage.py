"""is_transient on the errors a real PostgreSQL and SQLite raise, wrapped or raw.

The API turns a transient error into a 503 and a worker into a wait for the database;
anything else is a bug that must not be waited out.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from service.db_outage import is_transient
from tests.support.databases import POSTGRES_ADMIN_URL as POSTGRES_URL
from tests.support.processes import free_port

DRIVER_URL = sa.make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(False)


def raised(action: Callable[[], object]) -> BaseException:
    with pytest.raises(Exception) as caught:
        action()
    return caught.value


def test_a_server_that_refuses_connections_is_transient_raw_and_wrapped():
    closed = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    raw = raised(lambda: psycopg.connect(closed, connect_timeout=2))
    engine = sa.create_engine(
        closed.replace("postgresql:", "postgresql+psycopg:"), poolclass=NullPool
    )
    wrapped = raised(engine.connect)
    assert isinstance(raw, psycopg.OperationalError) and raw.sqlstate is None
    assert is_transient(raw) and is_transient(wrapped)


def test_a_connection_the_server_terminates_is_transient():
    # A fast shutdown or failover ends each backend with 57P01 (AdminShutdown).
    with (
        psycopg.connect(DRIVER_URL, autocommit=True) as victim,
        psycopg.connect(DRIVER_URL, autocommit=True) as admin,
    ):
        pid = victim.info.backend_pid
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        error = raised(lambda: victim.execute("SELECT 1"))
    assert isinstance(error, psycopg.errors.AdminShutdown), repr(error)
    assert is_transient(error)


def test_a_bad_statement_on_a_live_server_is_not_transient():
    with psycopg.connect(DRIVER_URL, autocommit=True) as conn:
        missing = raised(lambda: conn.execute("SELECT * FROM no_such_table_anywhere"))
        bad_cast = raised(lambda: conn.execute("SELECT 'x'::int"))
    engine = sa.create_engine(POSTGRES_URL, poolclass=NullPool)
    with engine.connect() as conn:
        wrapped = raised(lambda: conn.execute(sa.text("SELECT * FROM no_such_table_anywhere")))
    assert not any(is_transient(e) for e in (missing, bad_cast, wrapped))


def test_sqlite_locked_is_transient_and_a_missing_table_is_not(tmp_path: Path):
    path = tmp_path / "db.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    locked = raised(lambda: other.execute("INSERT INTO t VALUES (1)"))
    holder.rollback()
    missing = raised(lambda: other.execute("SELECT * FROM no_such_table"))
    holder.close()
    other.close()
    assert isinstance(locked, sqlite3.OperationalError) and "locked" in str(locked)
    assert is_transient(locked)
    assert not is_transient(missing)


def test_errors_from_elsewhere_are_not_the_databases():
    assert not is_transient(ValueError("no"))
    assert not is_transient(OSError("disk"))
