"""Which scheduler instance does the periodic upkeep: one leader, any number of standbys.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own.
PostgreSQL releases the lock the moment that session ends (the process dies, the host
loses power and TCP keepalives give up, the connection breaks), and a standby's next try
takes it. The upkeep stays correct if two instances ever overlap for a moment (a job
dispatched twice has one message id, JobTracking skips it once the job has finished, and
the sweeps are idempotent): the lock saves duplicate work, it is not what keeps data right.
SQLite is one machine's file, so there the one scheduler process always leads.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

# The advisory lock's key: any constant no other feature of this database uses ("rift" in ASCII).
SCHEDULER_LOCK_KEY = 0x72696674
# A dead leader's host is noticed by PostgreSQL after about idle + interval x count seconds.
KEEPALIVE_ARGS = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}
LOCK_CONNECT_TIMEOUT_S = 5


class Leadership(Protocol):
    def lead(self) -> bool:
        """Take or keep the lead; return whether this instance leads now."""
        ...

    def release(self) -> None: ...


class SingleInstance:
    """The only scheduler there can be (SQLite): always the leader."""

    def lead(self) -> bool:
        return True

    def release(self) -> None:
        pass


class AdvisoryLockLeadership:
    """Lead while holding a PostgreSQL advisory lock on a dedicated connection."""

    def __init__(self, database_url: str, key: int = SCHEDULER_LOCK_KEY) -> None:
        self.key = key
        self.engine = sa.create_engine(
            database_url,
            poolclass=NullPool,
            connect_args={**KEEPALIVE_ARGS, "connect_timeout": LOCK_CONNECT_TIMEOUT_S},
        )
        self._held: sa.Connection | None = None

    def lead(self) -> bool:
        if self._held is not None:
            try:
                # The lock lives as long as this session; a round trip proves the session does.
                self._held.execute(sa.text("SELECT 1")).close()
                self._held.commit()
                return True
            except sa.exc.DBAPIError:
                log.warning("scheduler lost its leader lock connection; standing by")
                self._drop()
        return self._try_acquire()

    def _try_acquire(self) -> bool:
        try:
            connection = self.engine.connect()
        except sa.exc.DBAPIError:
            return False
        try:
            acquired = bool(connection.scalar(sa.select(sa.func.pg_try_advisory_lock(self.key))))
            # Autocommit-like: nothing but the lock is held, no transaction stays open.
            connection.commit()
        except sa.exc.DBAPIError:
            connection.close()
            return False
        if not acquired:
            connection.close()
            return False
        log.info("scheduler took the leader lock")
        self._held = connection
        return True

    def _drop(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(sa.exc.DBAPIError):
                held.close()

    def release(self) -> None:
        """Give the lead up now (a graceful stop), so a standby need not wait for a timeout."""
        if self._held is not None:
            with contextlib.suppress(sa.exc.DBAPIError):
                self._held.execute(sa.select(sa.func.pg_advisory_unlock(self.key)))
                self._held.commit()
        self._drop()


def leadership_for(database_url: str) -> Leadership:
    """An advisory lock on PostgreSQL; on SQLite a single instance needs none."""
    if sa.make_url(database_url).get_backend_name() == "postgresql":
        return AdvisoryLockLeadership(database_url)
    return SingleInstance()
