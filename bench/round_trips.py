"""Count what one piece of work costs the database: statements sent and round trips waited.

Statements are counted where SQLAlchemy hands them to the driver. Round trips are read off
libpq's own protocol trace of every PostgreSQL connection opened while counting: each time
the client, having sent messages, turns to read the server's answer is one round trip
(a pool's liveness ping, BEGIN and COMMIT included; a pipeline's batch is one). SQLite
runs in-process: it has statements but no round trips.

libpq buffers its trace file, so the last answers of one piece of work may reach the file
only during the next: measure many repetitions at once and divide (`measure(work, n)`).
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.pool import Pool


@dataclass(frozen=True)
class DatabaseCost:
    statements: int
    round_trips: int


class DatabaseCounter:
    """Counts statements and round trips of every engine created while installed."""

    def __init__(self) -> None:
        self.statements = 0
        self._dir = Path(tempfile.mkdtemp(prefix="rift-trace-"))
        self._traces: list[Path] = []

    def install(self) -> None:
        event.listen(Engine, "before_cursor_execute", self._on_statement)
        event.listen(Pool, "connect", self._on_connect)

    def remove(self) -> None:
        event.remove(Engine, "before_cursor_execute", self._on_statement)
        event.remove(Pool, "connect", self._on_connect)
        for path in self._traces:
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self._dir.rmdir()

    def measure(self, work: Callable[[], Any], repeat: int = 1) -> DatabaseCost:
        """Run work `repeat` times; return what one run cost, on average (rounded)."""
        statements = self.statements
        offsets = {path: path.stat().st_size for path in self._traces}
        for _ in range(repeat):
            work()
        trips = sum(_round_trips(path, offsets.get(path, 0)) for path in self._traces)
        return DatabaseCost(
            statements=round((self.statements - statements) / repeat),
            round_trips=round(trips / repeat),
        )

    def _on_statement(self, *_: Any) -> None:
        self.statements += 1

    def _on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        pgconn = getattr(dbapi_connection, "pgconn", None)
        if pgconn is None:
            return  # not psycopg: nothing crosses a network
        from psycopg import pq

        path = self._dir / f"conn-{len(self._traces)}.trace"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        pgconn.trace(fd)
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        self._traces.append(path)


# A message line of libpq's trace: direction, length, type ("F\t42\tQuery\t...");
# a statement's text may continue on lines of its own.
_MESSAGE = re.compile(rb"^([FB])\t\d+\t")


def _round_trips(path: Path, offset: int) -> int:
    """Client-to-server turns in the trace after offset: each is one wait for the server."""
    with path.open("rb") as trace:
        trace.seek(offset)
        lines = trace.read().splitlines()
    turns, last = 0, b""
    for line in lines:
        message = _MESSAGE.match(line)
        if message is None:
            continue
        direction = message.group(1)
        if direction == b"B" and last == b"F":
            turns += 1
        last = direction
    return turns


@contextlib.contextmanager
def counting() -> Iterator[DatabaseCounter]:
    counter = DatabaseCounter()
    counter.install()
    try:
        yield counter
    finally:
        counter.remove()
