"""The job-record writes of one worker process, run straight on the database driver.

Every message costs two writes to its job record (RUNNING before, the outcome after), so
their client-side cost is paid per message, in the worker process that also runs
Dramatiq. Measured on the no-op benchmark (PostgreSQL, 4 threads): through SQLAlchemy,
with a pooled connection per write, the pair cost ~870 us of worker CPU per message,
more than Dramatiq's own handling of it; on a held DBAPI cursor, ~300 us.

So the statements in actors/job_record_writes.py are compiled once per dialect by SQLAlchemy
(the same SQL text and bind processing it would use itself) and executed on a DBAPI
connection that each worker thread keeps, in autocommit: each statement is atomic alone.

When the database drops connections (a restart, an idle timeout), every held connection
is dead at once: a disconnect on one retires them all, as SQLAlchemy's pool would. The
outcome write is then retried once on a fresh connection (it is idempotent, and Dramatiq
only logs errors from after-hooks, so a failed outcome would be lost); the RUNNING write
is not (it counts the attempt), its error fails the hook and Dramatiq retries the message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from actors.job_record_writes import (
    JOB_RECORD_STATEMENTS,
    Attempt,
    record_outcome,
    record_running,
)
from service.models import JobState

StatementResult = tuple[int, Sequence[Any] | None]


class CompiledStatement:
    """A Core statement compiled once: its SQL text, constant binds and bind processors."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        self.positional_names = list(compiled.positiontup or ()) if compiled.positional else None
        self.processors: dict[str, Callable[[Any], Any]] = {}
        self.constants: dict[str, Any] = {}
        for bind, name in compiled.bind_names.items():
            # The dialect's own implementation of the type: what SQLAlchemy would run.
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors[name] = processor
            # Binds with a value in the statement itself (the states, `attempts + 1`).
            if bind.effective_value is not None:
                self.constants[name] = self._process(name, bind.effective_value)

    def parameters(self, params: dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
        values = dict(self.constants)
        for name, value in params.items():
            values[name] = self._process(name, value)
        if self.positional_names is None:
            return values
        return [values[name] for name in self.positional_names]

    def _process(self, name: str, value: Any) -> Any:
        processor = self.processors.get(name)
        return value if processor is None else processor(value)


class JobRecords:
    """Runs the job-record statements from worker threads, each on its own connection.

    The engine should not pool (NullPool): each worker thread holds one connection for
    its life, so a pool sized for short checkouts would make threads past its size wait.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._compiled = {
            id(statement): CompiledStatement(statement, engine.dialect)
            for statement in JOB_RECORD_STATEMENTS
        }
        self._local = threading.local()
        self._lock = threading.Lock()
        self._held: set[PoolProxiedConnection] = set()
        # Bumped to retire every held connection: each thread drops its own on next use.
        self._generation = 0

    def start_attempt(self, job_id: str, now: datetime) -> Attempt:
        """Mark the job RUNNING (see `record_running`): how it started, its rift id, its number."""
        return record_running(self._run, job_id, now)

    def record_outcome(
        self,
        job_id: str,
        state: JobState,
        now: datetime,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        attempt: int | None = None,
    ) -> bool:
        """Store how an attempt ended (see `record_outcome`); False when nothing was written."""
        write = partial(record_outcome, job_id=job_id, state=state, now=now, attempt=attempt)
        generation = self._generation
        try:
            return write(self._run, result=result, error=error)
        except Exception:
            if self._generation == generation:
                raise
            # The connections were retired under this write (a disconnect): once more.
            return write(self._run, result=result, error=error)

    def close_thread_connection(self) -> None:
        """Close the calling thread's connection (its worker thread is stopping)."""
        conn: PoolProxiedConnection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and self._forget(conn):
            conn.close()

    def close(self) -> None:
        """Close every held connection (worker shutdown); later writes open new ones."""
        with self._lock:
            self._generation += 1
            held, self._held = self._held, set()
        for conn in held:
            conn.close()

    def _run(self, statement: ClauseElement, params: dict[str, Any]) -> StatementResult:
        compiled = self._compiled[id(statement)]
        conn = None
        try:
            conn = self._connection()
            # The thread's one cursor, kept with its connection: a new cursor per write
            # cost ~20 us of worker CPU (measured in one thread, two writes per message).
            cursor = self._local.cursor
            cursor.execute(compiled.sql, compiled.parameters(params))
            row = cursor.fetchone() if cursor.description else None
            return cursor.rowcount, row
        except BaseException as exc:
            if conn is not None:
                self._discard(conn, disconnected=self._is_disconnect(exc, conn))
            raise

    def _connection(self) -> PoolProxiedConnection:
        conn: PoolProxiedConnection | None = getattr(self._local, "conn", None)
        if conn is not None and self._local.generation == self._generation:
            return conn
        if conn is not None and self._forget(conn):
            # Retired by a disconnect elsewhere (close() already closed the rest).
            conn.invalidate()
        self._local.conn = None
        with self._lock:
            conn = self.engine.raw_connection()
            self._held.add(conn)
            generation = self._generation
        if self.engine.dialect.name == "postgresql":
            # One statement per write, each atomic alone: no transaction to begin or end.
            # (The SQLite engine's connections already run without implicit transactions.)
            driver = conn.driver_connection
            assert driver is not None
            driver.autocommit = True
        self._local.conn, self._local.generation = conn, generation
        self._local.cursor = conn.cursor()
        return conn

    def _is_disconnect(self, exc: BaseException, conn: PoolProxiedConnection) -> bool:
        dbapi_error = getattr(self.engine.dialect.loaded_dbapi, "Error", ())
        return isinstance(exc, dbapi_error) and self.engine.dialect.is_disconnect(
            exc, conn.driver_connection, None
        )

    def _forget(self, conn: PoolProxiedConnection) -> bool:
        """Stop tracking conn; False if it was not tracked (close() took it already)."""
        with self._lock:
            held = conn in self._held
            self._held.discard(conn)
            return held

    def _discard(self, conn: PoolProxiedConnection, *, disconnected: bool) -> None:
        self._local.conn = None
        held = self._forget(conn)
        if disconnected:
            with self._lock:
                self._generation += 1
        if held:
            conn.invalidate()
