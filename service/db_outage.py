"""Tell a database that cannot answer now from a query that can never work.

The API answers the first kind 503 with Retry-After; a worker lets a job wait for the
database instead of spending its retries. Both ask the same question of an error, whether
SQLAlchemy wrapped it or a raw DBAPI cursor (the job-record writer's) raised it.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy import exc as db_errors

# The error classes a database that is down, restarting or unreachable raises through
# SQLAlchemy; which of them mean "send it again" is is_transient's call.
DATABASE_UNAVAILABLE = (
    db_errors.OperationalError,
    db_errors.InterfaceError,
    db_errors.TimeoutError,
)
# The same, raised by the drivers themselves (AdminShutdown is an OperationalError).
DRIVER_UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError, sqlite3.OperationalError)
# SQLSTATE classes of a server that cannot serve now: connection exceptions (08),
# shutting down or starting up (57P01-57P03), too many connections (53300).
TRANSIENT_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300")
# SQLite's words for a file it cannot use right now (busy writer, file system trouble).
TRANSIENT_SQLITE_MESSAGES = ("database is locked", "unable to open database", "disk i/o error")


def is_transient(error: BaseException) -> bool:
    """True when the database could not answer now; False for a bug or a bad statement.

    OperationalError also covers a missing table or a bad statement: those are bugs,
    answered 500 (and reported), not a wait for the database to come back.
    """
    if isinstance(error, db_errors.TimeoutError):
        return True  # the pool waited for a connection
    if isinstance(error, db_errors.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, DRIVER_UNAVAILABLE):
        orig: BaseException = error
    elif isinstance(error, DATABASE_UNAVAILABLE):
        wrapped = getattr(error, "orig", None)
        if wrapped is None:
            return isinstance(error, db_errors.InterfaceError)
        orig = wrapped
    else:
        return False
    if isinstance(orig, psycopg.Error):  # sqlstate is None when no server ever answered
        sqlstate = orig.sqlstate
        return sqlstate is None or sqlstate.startswith(TRANSIENT_SQLSTATES)
    message = str(orig).lower()
    return any(words in message for words in TRANSIENT_SQLITE_MESSAGES)
