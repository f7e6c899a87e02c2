"""operator actions: who did what from the console or the CLI

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('operator_actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('job_id', sa.String(length=36), nullable=True),
    sa.Column('rift_id', sa.String(length=36), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_actions'))
    )
    with op.batch_alter_table('operator_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_operator_actions_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_operator_actions_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_operator_actions_rift_id'), ['rift_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('operator_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_operator_actions_rift_id'))
        batch_op.drop_index(batch_op.f('ix_operator_actions_job_id'))
        batch_op.drop_index(batch_op.f('ix_operator_actions_created_at'))
    op.drop_table('operator_actions')
