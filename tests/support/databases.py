"""Real test databases: a fresh PostgreSQL database or SQLite file per session, migrated."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from service.db import SessionFactory, transaction
from service.domain.clock import new_id, utcnow
from service.domain.queues import CLEAN_UP_RIFT, JobKind
from service.models import Base, Job, JobState

REPO_ROOT = Path(__file__).resolve().parents[2]
POSTGRES_ADMIN_URL = os.environ.get(
    "RIFT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def migrate(database_url: str) -> None:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def create_postgres_database() -> str:
    """Create an empty database on the local server; fail loudly if the server is absent."""
    name = f"rift_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return sa.make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    name = sa.make_url(url).database
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def empty_tables(engine: sa.Engine) -> None:
    """Delete every row, children first (faster than recreating the schema per test)."""
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


# A scratch table for the tests of the transaction machinery itself (service/db.py), in a
# database of their own: what they write is theirs, not the application's schema.
SCRATCH = sa.MetaData()
NOTES = sa.Table(
    "notes",
    SCRATCH,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("body", sa.Text, nullable=False),
)
INSERT_NOTE = sa.insert(NOTES).inline()


RIFT_ID = "rift-0001"


def queued_job(
    sessions: SessionFactory, job_id: str | None = None, kind: JobKind = CLEAN_UP_RIFT
) -> str:
    """A job record as a submission leaves it (QUEUED, no attempt yet); its id."""
    with transaction(sessions) as session:
        job = Job(
            id=job_id or new_id(),
            actor_name=kind.actor_name,
            queue_name=kind.queue_name,
            subject_id=new_id(),
            rift_id=RIFT_ID,
            state=JobState.QUEUED,
            attempts=0,
            progress=0,
            created_at=utcnow() - timedelta(seconds=5),
            updated_at=utcnow() - timedelta(seconds=5),
        )
        session.add(job)
    return job.id
