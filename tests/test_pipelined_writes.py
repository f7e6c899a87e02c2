"""A transaction's writes sent with its COMMIT (PostgreSQL pipeline mode), and idle pings.

`pipeline_rest` queues a transaction's last writes client-side and sends them with the
COMMIT in one round trip. What must hold whatever happens: an error among the queued writes
fails the transaction as an ordinary one would (the same exception, redacted, nothing
written), and a connection goes back to the pool out of pipeline mode (in pipeline mode
a SELECT reads as empty: another request would see rifts that do not exist as missing).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from service.db import (
    PING_WHEN_IDLE_S,
    SessionFactory,
    create_db_engine,
    create_session_factory,
    pipeline_rest,
    transaction,
)
from tests.support.databases import (
    INSERT_NOTE,
    NOTES,
    SCRATCH,
    create_postgres_database,
    drop_postgres_database,
)

SECRET = "seller-text-that-must-not-reach-an-error"
THREADS = 6
ROUNDS_PER_THREAD = 40


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    url = create_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture
def sessions(postgres_url: str) -> Iterator[SessionFactory]:
    # A small pool, so that threads share its connections and any leak shows at once.
    engine = create_db_engine(postgres_url, pool_size=2, max_overflow=0)
    SCRATCH.drop_all(engine)
    SCRATCH.create_all(engine)
    with engine.begin() as conn:
        conn.execute(NOTES.insert(), [{"id": 1, "body": SECRET}])
    yield create_session_factory(engine)
    SCRATCH.drop_all(engine)
    engine.dispose()


def note_ids(sessions: SessionFactory) -> list[int]:
    with sessions() as session:
        return list(session.scalars(sa.select(NOTES.c.id).order_by(NOTES.c.id)))


def test_queued_writes_commit_together(sessions: SessionFactory) -> None:
    with transaction(sessions) as session:
        assert session.execute(sa.select(sa.func.count()).select_from(NOTES)).scalar() == 1
        pipeline_rest(session)
        session.execute(INSERT_NOTE, [{"id": 2, "body": "a"}, {"id": 3, "body": "b"}])
        session.execute(sa.update(NOTES).where(NOTES.c.id == 1).values(body="c"))
    assert note_ids(sessions) == [1, 2, 3]


def test_an_error_in_the_queue_fails_the_transaction_redacted_and_writes_nothing(
    sessions: SessionFactory,
) -> None:
    with pytest.raises(IntegrityError) as raised, transaction(sessions) as session:
        pipeline_rest(session)
        session.execute(INSERT_NOTE, [{"id": 4, "body": "fine"}])
        session.execute(INSERT_NOTE, [{"id": 1, "body": SECRET}])  # duplicate key
    assert "duplicate key" in str(raised.value)
    assert SECRET not in str(raised.value) and SECRET not in str(raised.value.orig)
    assert note_ids(sessions) == [1], "the write queued before the failing one is gone too"


def test_an_exception_of_the_caller_rolls_the_queued_writes_back(
    sessions: SessionFactory,
) -> None:
    with pytest.raises(RuntimeError, match="refused"), transaction(sessions) as session:
        pipeline_rest(session)
        session.execute(INSERT_NOTE, [{"id": 5, "body": "never"}])
        raise RuntimeError("refused after queueing")
    assert note_ids(sessions) == [1]


def test_pooled_connections_never_stay_in_pipeline_mode_under_concurrency(
    sessions: SessionFactory,
) -> None:
    # Given threads that alternate pipelined writes (some failing) with plain reads on a
    # pool of two connections
    next_id = iter(range(100, 100 + THREADS * ROUNDS_PER_THREAD))
    lock = threading.Lock()
    empty_reads: list[int] = []

    def work() -> int:
        failures = 0
        for round_no in range(ROUNDS_PER_THREAD):
            with lock:
                note_id = next(next_id)
            try:
                with transaction(sessions) as session:
                    session.execute(sa.select(NOTES.c.id).where(NOTES.c.id == 1)).one()
                    pipeline_rest(session)
                    session.execute(INSERT_NOTE, [{"id": note_id, "body": "x"}])
                    if round_no % 5 == 0:
                        session.execute(INSERT_NOTE, [{"id": 1, "body": "dup"}])
            except IntegrityError:
                failures += 1
            # Then every read on whatever connection the pool hands out sees the rows
            with sessions() as session:
                if session.execute(sa.select(NOTES.c.id).where(NOTES.c.id == 1)).first() is None:
                    empty_reads.append(note_id)
        return failures

    with ThreadPoolExecutor(THREADS) as pool:
        failures = sum(pool.map(lambda _: work(), range(THREADS)))

    assert empty_reads == []
    assert failures == THREADS * ROUNDS_PER_THREAD // 5
    assert len(note_ids(sessions)) == 1 + THREADS * ROUNDS_PER_THREAD * 4 // 5


def test_pipeline_rest_is_a_no_op_on_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_db_engine(f"sqlite:///{tmp_path / 'notes.sqlite3'}")
    SCRATCH.create_all(engine)
    sqlite_sessions = create_session_factory(engine)
    with transaction(sqlite_sessions) as session:
        pipeline_rest(session)
        session.execute(INSERT_NOTE, [{"id": 1, "body": "a"}])
        # Reads still answer after it: SQLite has no pipeline to hide them.
        assert session.execute(sa.select(NOTES.c.id)).scalars().all() == [1]
    with pytest.raises(IntegrityError), transaction(sqlite_sessions) as session:
        pipeline_rest(session)
        session.execute(INSERT_NOTE, [{"id": 1, "body": "dup"}])
    engine.dispose()


def test_a_connection_killed_while_idle_is_replaced_at_checkout(
    postgres_url: str,
) -> None:
    # Given a pooled connection whose server backend was terminated while it sat idle
    engine = create_db_engine(postgres_url, pool_size=1, max_overflow=0)
    with engine.connect() as conn:
        victim = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    admin = create_db_engine(postgres_url)
    with admin.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": victim})
    admin.dispose()
    time.sleep(PING_WHEN_IDLE_S + 0.2)

    # When it is checked out again: the ping finds it dead and the pool opens another
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != victim
    engine.dispose()
