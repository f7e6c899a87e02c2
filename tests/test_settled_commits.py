"""A COMMIT whose answer is lost: the transaction learns what the server did before it ends.

A real PostgreSQL behind a proxy that breaks the connection at the COMMIT, in the three
ways a server stopping or a network breaking can (tests/support/pg_proxy.py). What must
hold: a settled transaction (the API's) returns only if its rows are stored, raises the
connection's error only if they are not, and says "unknown" only if the server stays
away past the wait; a COMMIT that was answered counts as committed for every
transaction; and the pool serves the next transaction as usual.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session

import service.db
from service.commit_outcome import CommitOutcomeUnknown
from service.db import (
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
from tests.support.pg_proxy import Cut, PostgresProxy

# A short wait, so the "server stays away" case takes seconds, not the production 30 s.
SETTLE_WITHIN_S = 2.0


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    url = create_postgres_database()
    engine = create_db_engine(url)
    SCRATCH.create_all(engine)
    engine.dispose()
    yield url
    drop_postgres_database(url)


@pytest.fixture
def sessions(postgres_url: str, proxy: PostgresProxy, monkeypatch) -> Iterator[SessionFactory]:
    monkeypatch.setattr(service.db, "SETTLE_WITHIN_S", SETTLE_WITHIN_S)
    engine = create_db_engine(proxy.url(postgres_url), pool_size=2, max_overflow=0)
    with engine.begin() as conn:
        conn.execute(NOTES.delete())
    yield create_session_factory(engine)
    engine.dispose()


def stored(sessions: SessionFactory) -> list[int]:
    with sessions() as session:
        return list(session.scalars(sa.select(NOTES.c.id).order_by(NOTES.c.id)))


def pipelined_write(session: Session, note_id: int) -> None:
    session.execute(sa.select(NOTES.c.id).where(NOTES.c.id == note_id).with_for_update())
    pipeline_rest(session)
    session.connection().execute(INSERT_NOTE, [{"id": note_id, "body": "pipelined"}])


def plain_write(session: Session, note_id: int) -> None:
    session.execute(sa.insert(NOTES).values(id=note_id, body="plain"))


WRITES = [pipelined_write, plain_write]


@pytest.mark.parametrize("write", WRITES, ids=["pipelined", "plain"])
def test_a_lost_commit_answer_is_settled_as_committed_and_the_rows_are_there(
    sessions, proxy, write, caplog
):
    proxy.arm(Cut.LOSE_ANSWER)
    with (
        caplog.at_level(logging.WARNING, logger="service.commit_outcome"),
        transaction(sessions, settle_commit=True) as session,
    ):
        write(session, 1)
    assert proxy.cuts == 1
    assert stored(sessions) == [1]
    settled = [r for r in caplog.records if "settled" in r.getMessage()]
    assert [r.outcome for r in settled] == ["committed"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("write", WRITES, ids=["pipelined", "plain"])
def test_a_commit_that_never_reached_the_server_raises_and_nothing_is_stored(
    sessions, proxy, write
):
    proxy.arm(Cut.DROP_COMMIT)
    with pytest.raises(DBAPIError) as raised, transaction(sessions, settle_commit=True) as session:
        write(session, 2)
    assert raised.value.connection_invalidated  # answered 503 "nothing was saved"
    assert proxy.cuts == 1
    assert stored(sessions) == []


def test_the_server_away_past_the_wait_is_unknown_and_the_truth_shows_once_it_is_back(
    sessions, proxy
):
    proxy.arm(Cut.LOSE_ANSWER, refuse_s=SETTLE_WITHIN_S + 2)
    started = time.monotonic()
    with pytest.raises(CommitOutcomeUnknown), transaction(sessions, settle_commit=True) as session:
        pipelined_write(session, 3)
    waited = time.monotonic() - started
    assert SETTLE_WITHIN_S / 2 <= waited <= SETTLE_WITHIN_S + 1, waited
    time.sleep(SETTLE_WITHIN_S + 2 - waited + 0.2)
    assert stored(sessions) == [3]  # it had committed: "unknown" was the honest answer


def test_a_server_back_within_the_wait_is_asked_and_the_commit_returns(sessions, proxy):
    proxy.arm(Cut.LOSE_ANSWER, refuse_s=SETTLE_WITHIN_S / 2)
    started = time.monotonic()
    with transaction(sessions, settle_commit=True) as session:
        pipelined_write(session, 4)
    assert time.monotonic() - started >= SETTLE_WITHIN_S / 2
    assert stored(sessions) == [4]


@pytest.mark.parametrize("settle", [True, False], ids=["settled", "worker"])
def test_an_answered_commit_counts_as_committed_when_the_connection_breaks_after_it(
    sessions, proxy, settle
):
    proxy.arm(Cut.LOSE_READY)
    with transaction(sessions, settle_commit=settle) as session:
        pipelined_write(session, 5)
    assert proxy.cuts == 1
    assert stored(sessions) == [5]


def test_without_settling_a_lost_answer_is_an_error_the_job_retries(sessions, proxy):
    # Workers' transactions: an error means "run the job again", which finds its work done.
    proxy.arm(Cut.LOSE_ANSWER)
    with pytest.raises(DBAPIError), transaction(sessions) as session:
        pipelined_write(session, 6)
    assert stored(sessions) == [6]


class _Base(DeclarativeBase):
    metadata = SCRATCH


class Note(_Base):
    __table__ = NOTES


def test_what_the_caller_loaded_stays_loaded_after_a_settled_commit(sessions, proxy):
    with transaction(sessions) as session:
        session.add(Note(id=7, body="before"))
    proxy.arm(Cut.LOSE_ANSWER)
    with transaction(sessions, settle_commit=True) as session:
        note = session.get_one(Note, 7)
        note.body = "after"  # flushed before the COMMIT, as a use case's ORM changes are
    # The session let go of it loaded, as after any commit: no lazy load on a dead
    # connection, no DetachedInstanceError for whoever builds the answer from it.
    assert note.body == "after"
    with sessions() as session:
        assert session.get_one(Note, 7).body == "after"


def test_after_every_kind_of_cut_the_pool_serves_the_next_transactions(sessions, proxy):
    for n, cut in enumerate(Cut, start=10):
        proxy.arm(cut)
        try:
            with transaction(sessions, settle_commit=True) as session:
                pipelined_write(session, n)
        except DBAPIError:
            assert cut is Cut.DROP_COMMIT
        for m in range(3):  # both pooled connections, one of them new
            with transaction(sessions, settle_commit=True) as session:
                pipelined_write(session, 100 * n + m)
    ids = stored(sessions)
    assert [n for n in ids if n < 100] == [10, 12]
    assert len([n for n in ids if n >= 100]) == 3 * len(Cut)
