"""job listing indexes: operators' newest-first listings read a page, not the whole table

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FAILURES = "state IN ('FAILED', 'DEAD')"


def upgrade() -> None:
    # Job records are written all the time: on PostgreSQL build the indexes without
    # blocking those writes (CONCURRENTLY, which cannot run inside a transaction).
    concurrently = op.get_bind().dialect.name == 'postgresql'
    with op.get_context().autocommit_block():
        # Newest first over every job record, whatever else the filter says.
        op.create_index(
            'ix_jobs_created_at', 'jobs', ['created_at'], postgresql_concurrently=concurrently
        )
        # The default listing (FAILED and DEAD, newest first): partial, so the hot path's
        # writes of every other state never touch it.
        op.create_index(
            'ix_jobs_failures_created',
            'jobs',
            # state and actor: a filtered count reads the index alone, no heap row each.
            ['created_at', 'state', 'actor_name'],
            postgresql_where=sa.text(FAILURES),
            sqlite_where=sa.text(FAILURES),
            postgresql_concurrently=concurrently,
        )


def downgrade() -> None:
    op.drop_index(
        'ix_jobs_failures_created',
        table_name='jobs',
        postgresql_where=sa.text(FAILURES),
        sqlite_where=sa.text(FAILURES),
    )
    op.drop_index('ix_jobs_created_at', table_name='jobs')
