"""The job-record writes of one worker process, run straight on the database driver.

Every message costs two writes to its job record (RUNNING before, the outcome after), so
their client-side cost is paid per message, in the worker process that also runs
Dramatiq. Measured on the no-op benchmark (PostgreSQL, 4 threads): through SQLAlchemy,
with a pooled connection per write, the pair cost ~870 us of worker CPU per message,
more than Dramatiq's own handling of it; on a held DBAPI cursor, ~300 us.

So the statements in service/domain/jobs.py are compiled once per dialect by SQLAlchemy
(the same SQL text and bind processing it would use itself) and executed on a DBAPI
connection that each worker thread keeps, in autocommit: each statement is atomic alone.
A write that fails drops its connection (it may be the dead one) and fails the hook, so
Dramatiq retries the message; the next write opens a fresh connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Dialect
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from service.domain.jobs import (
    JOB_RECORD_STATEMENTS,
    AttemptStart,
    RunStatement,
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
    """Runs the job-record statements from worker threads, each on its own connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._compiled = {
            id(statement): CompiledStatement(statement, engine.dialect)
            for statement in JOB_RECORD_STATEMENTS
        }
        self._local = threading.local()
        self._lock = threading.Lock()
        self._held: set[PoolProxiedConnection] = set()

    def start_attempt(self, job_id: str, now: datetime) -> tuple[AttemptStart, str | None]:
        """Mark the job RUNNING (see `record_running`); how it started, and its rift id."""
        return record_running(self._runner(), job_id, now)

    def record_outcome(
        self,
        job_id: str,
        state: JobState,
        now: datetime,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Store how an attempt ended; False when no such job record exists."""
        return record_outcome(self._runner(), job_id, state, now, result=result, error=error)

    def close(self) -> None:
        """Return every held connection (worker shutdown); later writes open new ones."""
        with self._lock:
            held, self._held = self._held, set()
        for conn in held:
            conn.close()

    def _runner(self) -> RunStatement:
        conn = self._connection()

        def run(
            statement: ClauseElement, params: dict[str, Any]
        ) -> tuple[int, Sequence[Any] | None]:
            compiled = self._compiled[id(statement)]
            try:
                cursor = conn.cursor()
                try:
                    cursor.execute(compiled.sql, compiled.parameters(params))
                    row = cursor.fetchone() if cursor.description else None
                    return cursor.rowcount, row
                finally:
                    cursor.close()
            except BaseException:
                self._discard(conn)
                raise

        return run

    def _connection(self) -> PoolProxiedConnection:
        conn: PoolProxiedConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.engine.raw_connection()
            # One statement per write, each atomic alone: no transaction to begin or end
            # (psycopg; the SQLite engine's connections already run in autocommit).
            driver = conn.driver_connection
            assert driver is not None
            if hasattr(driver, "autocommit") and driver.autocommit is not True:
                driver.autocommit = True
            self._local.conn = conn
            with self._lock:
                self._held.add(conn)
        return conn

    def _discard(self, conn: PoolProxiedConnection) -> None:
        self._local.conn = None
        with self._lock:
            self._held.discard(conn)
        conn.invalidate()
