"""Engine and session factory; SQLite gets the settings that make it a safe embedded default."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000

SessionFactory = sessionmaker[Session]


def create_db_engine(
    database_url: str, *, single_statements: bool = False, **kwargs: Any
) -> Engine:
    """Create an engine; for SQLite, WAL mode and write-locking transactions.

    `single_statements` is for callers whose every write is one self-contained statement
    (the job-record hooks, actors/job_records.py): on PostgreSQL they run in autocommit,
    one round trip each, without the pool's liveness ping (a dead connection fails that
    call, which is retried).
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        if single_statements:
            kwargs.setdefault("isolation_level", "AUTOCOMMIT")
        kwargs.setdefault("pool_pre_ping", not single_statements)
        return create_engine(url, **kwargs)

    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"isolation_level": None}, **kwargs)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        # SQLite has no row locks: taking the write lock at BEGIN is what makes
        # "lock the proof row, then decide" safe across API, workers and scheduler.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_session_factory(engine: Engine) -> SessionFactory:
    """Return the session factory every entry point hands to the domain."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: SessionFactory) -> Iterator[Session]:
    """Open a session in one transaction: committed on success, rolled back on error."""
    with sessions() as session, session.begin():
        yield session
