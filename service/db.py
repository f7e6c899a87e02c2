"""Engine and session factory; SQLite gets the settings that make it a safe embedded default."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from service.commit_outcome import SETTLE_WITHIN_S, begin_with_id, committed
from service.observability.redaction import redact_database_error, redact_driver_error

SQLITE_BUSY_TIMEOUT_MS = 30_000
# PostgreSQL down or unreachable: fail the request (503) well before the API's timeout.
POSTGRES_CONNECT_TIMEOUT_S = 5
# The execution option `transaction()` sets: this connection's transaction will write.
WRITE_OPTION = "rift_writes"
# How recently a pooled connection must have been in use to skip the liveness ping.
PING_WHEN_IDLE_S = 1.0
_RETURNED_AT = "rift_returned_at"
# Where a transaction's write pipeline is kept (see pipeline_rest).
_PIPELINE = "rift_write_pipeline"

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
        engine = create_engine(url, **kwargs)
        if not single_statements:
            _ping_when_idle(engine)
        return _redacting(engine)

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


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection is alive before use, unless it was in use a moment ago.

    A database restart leaves every pooled connection dead; a checkout that pings first
    replaces a dead one instead of failing the request on it. But a ping is a round trip,
    and under load a connection comes back to the pool and out again within milliseconds:
    pinging those (`pool_pre_ping`) cost two of a submission's round trips. So, as
    HikariCP's alive-bypass window does, a connection checked in less than
    PING_WHEN_IDLE_S ago is used unpinged; one that dies within that window fails that one
    request (a 503 the client retries) and SQLAlchemy then replaces the whole pool.
    """

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_connection: Any, record: Any) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is not None and time.monotonic() - returned < PING_WHEN_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and checks out another (up to 3 times).
            raise DisconnectionError(f"pooled connection is dead: {type(exc).__name__}") from exc
        if not alive:
            raise DisconnectionError("pooled connection is dead")


def _redacting(engine: Engine) -> Engine:
    """Strip values from the engine's error messages (PostgreSQL's DETAIL quotes the row)."""
    event.listen(engine, "handle_error", redact_database_error)
    return engine


def create_session_factory(engine: Engine) -> SessionFactory:
    """Return the session factory every entry point hands to the domain."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: SessionFactory, *, settle_commit: bool = False) -> Iterator[Session]:
    """Open a session in one write transaction: committed on success, rolled back on error.

    A session opened without it (`with sessions() as session:`) is for reads: on SQLite it
    begins deferred and must not write (see `create_db_engine`).

    With `settle_commit` (the API's unit of work), a COMMIT whose answer the broken
    connection lost is settled with PostgreSQL before this returns or raises
    (service/commit_outcome.py): it returns if the transaction committed, re-raises the
    connection's error if it did not, and raises CommitOutcomeUnknown if the database
    stays away too long to tell. Workers need none of it: a job that errs runs again, and
    finds its work done. Any transaction whose COMMIT was answered before the connection
    broke counts as committed.
    """
    engine = sessions.kw["bind"]
    assert isinstance(engine, Engine)
    settling = settle_commit and engine.dialect.driver == "psycopg"
    with sessions() as session:
        session.begin()
        conn = session.connection(execution_options=_SETTLED_WRITES if settling else _WRITES)
        xid = begin_with_id(conn) if settling else None
        try:
            yield session
            if _PIPELINE in session.info:
                _check_nothing_left_for_the_orm(session)
            else:
                session.flush()  # its errors are the statements': nothing was committed
        except BaseException:
            pipeline = session.info.pop(_PIPELINE, None)
            if pipeline is not None:
                pipeline.abandon()
            raise  # closing the session rolls back
        if not _commit(session, engine, xid):
            # Committed, on a connection now gone: what the caller loaded stays loaded,
            # as after any commit (a rollback would expire it), and the session lets go.
            session.expunge_all()
            session.rollback()


_WRITES = {WRITE_OPTION: True}
# psycopg would send its own BEGIN; the settled transaction sends BEGIN with its id query.
_SETTLED_WRITES = {WRITE_OPTION: True, "isolation_level": "AUTOCOMMIT"}


def _check_nothing_left_for_the_orm(session: Session) -> None:
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("ORM changes made after pipeline_rest(); make them before it")


def _commit(session: Session, engine: Engine, xid: str | None) -> bool:
    """COMMIT; False if it committed but the connection broke (SQLAlchemy must not commit)."""
    pipeline: _WritePipeline | None = session.info.pop(_PIPELINE, None)
    if pipeline is None and xid is None:
        session.commit()
        return True
    try:
        if pipeline is not None:
            alive = pipeline.commit()
        else:
            _commit_on_driver(session)
            alive = True
    except DBAPIError as exc:
        if xid is None or not exc.connection_invalidated:
            raise  # a statement's error rolled it back, or a worker's job will run again
        if not committed(lambda: _autocommit(engine), xid, exc, SETTLE_WITHIN_S):
            raise
        alive = False
    if alive:
        session.commit()  # after the driver's COMMIT there is nothing left to send
    return alive


def _commit_on_driver(session: Session) -> None:
    """Send the settled transaction's COMMIT (psycopg in autocommit mode still sends it)."""
    conn = session.connection()
    driver: Any = conn.connection.driver_connection
    try:
        driver.commit()
    except conn.dialect.loaded_dbapi.Error as exc:
        raise _as_sqlalchemy_error(conn, driver, exc) from exc


class _WritePipeline:
    """A psycopg pipeline holding a transaction's last writes and its COMMIT.

    It must be closed before SQLAlchemy hands the connection back to its pool (where a
    connection still in pipeline mode would serve another request's SELECTs empty), so
    `transaction()` closes it itself, before SQLAlchemy's commit or rollback.
    """

    def __init__(self, session: Session) -> None:
        self.conn = session.connection()
        driver = self.conn.connection.driver_connection
        assert driver is not None
        self.driver = driver
        self.pipeline = driver.pipeline()
        self.pipeline.__enter__()

    def commit(self) -> bool:
        """Send the queued writes and COMMIT in one round trip; raise the first error.

        False if the connection broke after the COMMIT was answered: that transaction is
        committed, and the broken connection is invalidated.
        """
        answer = None
        try:
            answer = self.driver.execute("COMMIT")
            self.pipeline.__exit__(None, None, None)
        except self.conn.dialect.loaded_dbapi.Error as exc:
            self.abandon()
            if answer is not None and answer.statusmessage == "COMMIT":
                self.conn.invalidate(exc)
                return False
            raise _as_sqlalchemy_error(self.conn, self.driver, exc) from exc
        return True

    def abandon(self) -> None:
        """Leave pipeline mode after an error (what was queued is rolled back)."""
        with suppress(Exception):
            self.pipeline.__exit__(None, None, None)


def _as_sqlalchemy_error(conn: Connection, driver: Any, exc: Exception) -> Exception:
    """The driver's error as SQLAlchemy raises it from an execute, redacted the same way."""
    dialect = conn.dialect
    disconnected = dialect.is_disconnect(exc, driver, None)  # type: ignore[arg-type]
    if disconnected:
        conn.invalidate(exc)
    wrapped = DBAPIError.instance(
        None,
        None,
        exc,
        dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=disconnected,
        dialect=dialect,
    )
    redact_driver_error(exc, wrapped)
    return wrapped


def pipeline_rest(session: Session) -> None:
    """Send the transaction's remaining statements and its COMMIT in one round trip.

    On PostgreSQL (psycopg) this enters pipeline mode: statements queue up client-side and
    go out with the COMMIT, and the first error among them is raised at the commit (so the
    transaction rolls back as usual). Only writes without results may follow: a SELECT or a
    RETURNING in pipeline mode would read as empty. Elsewhere (SQLite) it does nothing.
    Call it inside `transaction()`, after the reads the writes depend on.
    """
    if _PIPELINE in session.info:
        return
    if session.get_bind().dialect.driver == "psycopg":
        session.info[_PIPELINE] = _WritePipeline(session)


@contextmanager
def autocommit_reads(sessions: SessionFactory) -> Iterator[Connection]:
    """A connection for single-statement reads: no BEGIN or ROLLBACK round trips around them.

    Each statement sees its own snapshot, so use it where one statement answers the
    question. SQLite reads are local: they keep the engine's deferred transactions.
    """
    engine = sessions.kw["bind"]
    assert isinstance(engine, Engine)
    with _autocommit(engine) as conn:
        yield conn


@contextmanager
def _autocommit(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        yield conn
