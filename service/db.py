"""Engine and session factory; SQLite gets the settings that make it a safe embedded default."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from service.observability.redaction import redact_database_error

SQLITE_BUSY_TIMEOUT_MS = 30_000
# PostgreSQL down or unreachable: fail the request (503) well before the API's timeout.
POSTGRES_CONNECT_TIMEOUT_S = 5
# The execution option `transaction()` sets: this connection's transaction will write.
WRITE_OPTION = "rift_writes"

SessionFactory = sessionmaker[Session]


def create_db_engine(
    database_url: str, *, single_statements: bool = False, **kwargs: Any
) -> Engine:
    """Create an engine; for SQLite, WAL mode, write-locking writes and deferred reads.

    `single_statements` is for callers whose every write is one self-contained statement
    (the job-record hooks, actors/job_records.py): on PostgreSQL they run in autocommit,
    one round trip each, without the pool's liveness ping (a dead connection fails that
    call, which is retried).
    """
    url = make_url(database_url)
    # A seller's text, tracking number or URL is a bound value: never part of an error.
    kwargs.setdefault("hide_parameters", True)
    if url.get_backend_name() != "sqlite":
        if url.get_backend_name() == "postgresql":
            connect_args = kwargs.setdefault("connect_args", {})
            connect_args.setdefault("connect_timeout", POSTGRES_CONNECT_TIMEOUT_S)
        if single_statements:
            kwargs.setdefault("isolation_level", "AUTOCOMMIT")
        kwargs.setdefault("pool_pre_ping", not single_statements)
        return _redacting(create_engine(url, **kwargs))

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
    def _begin(connection: Any) -> None:
        # SQLite has no row locks: a write transaction takes the write lock at BEGIN, which
        # is what makes "lock the proof row, then decide" safe across API, workers and
        # scheduler (a deferred one that read first could not upgrade if another writer
        # committed meanwhile). Reads begin deferred: in WAL mode they see one snapshot and
        # never wait for, nor hold up, a writer.
        if connection.get_execution_options().get(WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")

    return _redacting(engine)


def _redacting(engine: Engine) -> Engine:
    """Strip values from the engine's error messages (PostgreSQL's DETAIL quotes the row)."""
    event.listen(engine, "handle_error", redact_database_error)
    return engine


def create_session_factory(engine: Engine) -> SessionFactory:
    """Return the session factory every entry point hands to the domain."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: SessionFactory) -> Iterator[Session]:
    """Open a session in one write transaction: committed on success, rolled back on error.

    A session opened without it (`with sessions() as session:`) is for reads: on SQLite it
    begins deferred and must not write (see `create_db_engine`).
    """
    with sessions() as session, session.begin():
        session.connection(execution_options={WRITE_OPTION: True})
        yield session
