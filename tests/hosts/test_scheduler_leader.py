"""Exactly one scheduler leads: a PostgreSQL advisory lock, taken over when the leader dies."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from actors.leadership import (
    SCHEDULER_LOCK_KEY,
    AdvisoryLockLeadership,
    SingleInstance,
    leadership_for,
)
from service.settings import Settings
from tests.conftest import settings_env
from tests.support.processes import ManagedProcess, free_port, wait_for
from tests.support.settings import test_settings

TOOK_THE_LEAD = "scheduler took the leader lock"
TAKEOVER_TIMEOUT_S = 15.0


def lock_holders(database_url: str) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            return int(
                conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                        "AND granted AND ((classid::bigint << 32) | objid::bigint) = :key"
                    ),
                    {"key": SCHEDULER_LOCK_KEY},
                )
                or 0
            )
    finally:
        engine.dispose()


def terminate_sessions_of(database_url: str, leadership: AdvisoryLockLeadership) -> None:
    """End the lock holder's session from the server side, as a failover or a restart does."""
    assert leadership._held is not None
    backend = leadership._held.scalar(sa.text("SELECT pg_backend_pid()"))
    leadership._held.commit()
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    finally:
        engine.dispose()


def test_one_instance_leads_and_a_standby_takes_over_when_its_session_ends(shared_database):
    first = AdvisoryLockLeadership(shared_database)
    second = AdvisoryLockLeadership(shared_database)
    try:
        assert first.lead() is True
        assert second.lead() is False
        assert first.lead() is True, "the leader keeps the lead"
        assert lock_holders(shared_database) == 1

        # When the leader's database session ends, the standby's next try takes the lead,
        # and the old leader notices on its next check and stands by
        terminate_sessions_of(shared_database, first)
        wait_for(second.lead, TAKEOVER_TIMEOUT_S, "the standby to take the lock")
        assert first.lead() is False
        assert second.lead() is True
        assert lock_holders(shared_database) == 1

        # When the leader stops gracefully, the standby leads at once
        second.release()
        assert first.lead() is True
    finally:
        first.release()
        second.release()
    assert lock_holders(shared_database) == 0


def test_sqlite_needs_no_lock_its_one_scheduler_leads(tmp_path: Path):
    leadership = leadership_for(f"sqlite:///{tmp_path / 'rift.sqlite3'}")
    assert isinstance(leadership, SingleInstance)
    assert leadership.lead() is True


@pytest.mark.slow
@pytest.mark.chaos
def test_of_two_scheduler_processes_one_leads_and_the_other_takes_over_when_it_is_killed(
    shared_database, redis_url, clamd, tmp_path: Path
):
    settings: Settings = test_settings(shared_database, redis_url, tmp_path / "data", clamd.port)

    def scheduler(name: str) -> ManagedProcess:
        return ManagedProcess(
            [sys.executable, "-m", "actors.scheduler"],
            settings_env(settings, COLLECTOR_PORT=str(free_port())),
            tmp_path / f"{name}.log",
        ).start()

    schedulers = [scheduler("scheduler-a"), scheduler("scheduler-b")]
    try:
        wait_for(
            lambda: any(TOOK_THE_LEAD in s.output() for s in schedulers),
            TAKEOVER_TIMEOUT_S,
            "a scheduler to take the lead",
        )
        leaders = [s for s in schedulers if TOOK_THE_LEAD in s.output()]
        assert len(leaders) == 1, [s.output() for s in schedulers]
        assert lock_holders(shared_database) == 1
        [standby] = [s for s in schedulers if s is not leaders[0]]

        leaders[0].kill_hard()

        wait_for(
            lambda: TOOK_THE_LEAD in standby.output(),
            TAKEOVER_TIMEOUT_S,
            "the standby to take over",
        )
        assert standby.alive()
        assert lock_holders(shared_database) == 1
    finally:
        for process in schedulers:
            process.stop()
