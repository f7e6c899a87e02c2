"""The embedded default: SQLite in WAL mode, deferred reads, write-locking writes."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.db import create_db_engine, create_session_factory, transaction

READER_HOLDS_S = 3.0
WRITERS = 8
WRITES_PER_WRITER = 25


@pytest.fixture
def sqlite_sessions(tmp_path: Path):
    engine = create_db_engine(f"sqlite:///{tmp_path / 'rift.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER)"))
        conn.execute(sa.text("INSERT INTO counters VALUES (1, 0)"))
    yield create_session_factory(engine)
    engine.dispose()


def test_sqlite_runs_in_wal_mode(sqlite_sessions):
    with sqlite_sessions() as session:
        assert session.execute(sa.text("PRAGMA journal_mode")).scalar_one() == "wal"


def test_a_long_read_never_holds_up_writers_and_no_write_sees_database_is_locked(
    sqlite_sessions,
):
    # Given a reader that keeps its session open (as a job reading files once did)
    reader_open = threading.Event()

    def long_read() -> int:
        with sqlite_sessions() as session:
            first = session.execute(sa.text("SELECT n FROM counters")).scalar_one()
            reader_open.set()
            time.sleep(READER_HOLDS_S)
            # Deferred: one snapshot for the whole read, whatever was committed meanwhile.
            assert session.execute(sa.text("SELECT n FROM counters")).scalar_one() == first
            return int(first)

    # And writers that read, then write, in short transactions (the proof-lock pattern)
    def write_many() -> None:
        for _ in range(WRITES_PER_WRITER):
            with transaction(sqlite_sessions) as session:
                n = session.execute(sa.text("SELECT n FROM counters WHERE id = 1")).scalar_one()
                session.execute(sa.text("UPDATE counters SET n = :n WHERE id = 1"), {"n": n + 1})

    with ThreadPoolExecutor(WRITERS + 1) as pool:
        reader = pool.submit(long_read)
        reader_open.wait(5)
        # When they all write while the read is open
        started = time.monotonic()
        writers = [pool.submit(write_many) for _ in range(WRITERS)]
        for future in writers:
            future.result()
        writes_took_s = time.monotonic() - started
        reader.result()

    # Then no write waited for the reader, none failed, and none was lost
    assert writes_took_s < READER_HOLDS_S, f"writers waited {writes_took_s:.1f}s for a reader"
    with sqlite_sessions() as session:
        total = session.execute(sa.text("SELECT n FROM counters")).scalar_one()
    assert total == WRITERS * WRITES_PER_WRITER
