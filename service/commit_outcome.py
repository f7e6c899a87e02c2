"""Whether a transaction committed when the connection broke during its COMMIT.

A COMMIT the server received may have been carried out even though its answer never came
back (the server stopped, a failover, a broken network). A client told "nothing was
saved" then sends the request again, and a proof is stored twice. So the API's write
transactions learn their transaction id as they begin (in the BEGIN's own round trip)
and, when the COMMIT's answer is lost, ask PostgreSQL what became of that transaction
(`pg_xact_status`, PostgreSQL 13 and later) on a new connection, waiting for the server
to come back if it has to: the answer is then "stored" or, truthfully, "nothing saved".
Only if the server stays away longer than SETTLE_WITHIN_S is the outcome unknown, and
the request is answered so (`CommitOutcomeUnknown`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

Connect = Callable[[], AbstractContextManager[Connection]]

#: How long a request whose COMMIT answer was lost waits to learn what happened. A
#: PostgreSQL restart or failover takes seconds to tens of seconds; the API's request
#: timeout (API_TIMEOUT_S, 120 s) is well above this.
SETTLE_WITHIN_S = 30.0
_FIRST_DELAY_S = 0.1
_MAX_DELAY_S = 1.0
# One round trip, as psycopg's own BEGIN would be: the id is assigned here, before any
# write, so it is known whatever happens next.
_BEGIN_WITH_ID = "BEGIN; SELECT pg_current_xact_id()::text"
_STATUS = text("SELECT pg_xact_status(CAST(:xid AS xid8))")


class CommitOutcomeUnknown(Exception):
    """The COMMIT's answer was lost and the database did not come back to say what it did."""

    def __init__(self, xid: str, waited_s: float) -> None:
        super().__init__(
            f"transaction {xid}: the connection broke during COMMIT and the database "
            f"did not answer for {waited_s:.0f} s whether it committed"
        )


def begin_with_id(conn: Connection) -> str:
    """BEGIN on conn's driver connection (in autocommit mode) and return the transaction id."""
    driver: Any = conn.connection.driver_connection
    cursor = driver.execute(_BEGIN_WITH_ID)
    cursor.nextset()
    row = cursor.fetchone()
    assert row is not None
    return str(row[0])


def committed(connect: Connect, xid: str, error: BaseException, within_s: float) -> bool:
    """Whether transaction xid committed, asked on new connections until the server answers.

    `connect` opens an autocommit connection (one round trip per question, no BEGIN).
    True: committed; False: rolled back (or never reached the COMMIT). Raises
    CommitOutcomeUnknown when no answer comes within `within_s`.
    """
    started = time.monotonic()
    delay = _FIRST_DELAY_S
    while True:
        status = _status(connect, xid)
        if status in ("committed", "aborted"):
            log.warning(
                "connection lost during COMMIT; settled with the database",
                extra={"xid": xid, "outcome": status, "waited_s": time.monotonic() - started},
            )
            return status == "committed"
        waited = time.monotonic() - started
        if waited + delay > within_s:
            raise CommitOutcomeUnknown(xid, waited) from error
        # "in progress": the server has not noticed the client went away yet.
        time.sleep(delay)
        delay = min(delay * 2, _MAX_DELAY_S)


def _status(connect: Connect, xid: str) -> str | None:
    try:
        with connect() as conn:
            status: str | None = conn.execute(_STATUS, {"xid": xid}).scalar_one_or_none()
            return status
    except DBAPIError:
        return None  # not back yet
