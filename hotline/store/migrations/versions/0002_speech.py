"""Speech to text: a call's transcript state, a ticket's suggestion, the scheduler's jobs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('calls') as batch:
        batch.add_column(sa.Column('transcript_state', sa.String(length=16), nullable=True))
        batch.create_index(op.f('ix_calls_transcript_state'), ['transcript_state'], unique=False)
    with op.batch_alter_table('tickets') as batch:
        batch.add_column(sa.Column('suggested_category', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column(
            'draft', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True))
    # APScheduler's SQLAlchemyJobStore table (the same layout it would create itself), so
    # that the schema stays Alembic's alone.
    op.create_table('apscheduler_jobs',
    sa.Column('id', sa.Unicode(length=191), nullable=False),
    sa.Column('next_run_time', sa.Float(precision=25), nullable=True),
    sa.Column('job_state', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_apscheduler_jobs'))
    )
    op.create_index(op.f('ix_apscheduler_jobs_next_run_time'), 'apscheduler_jobs',
                    ['next_run_time'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_apscheduler_jobs_next_run_time'), table_name='apscheduler_jobs')
    op.drop_table('apscheduler_jobs')
    with op.batch_alter_table('tickets') as batch:
        batch.drop_column('draft')
        batch.drop_column('suggested_category')
    with op.batch_alter_table('calls') as batch:
        batch.drop_index(op.f('ix_calls_transcript_state'))
        batch.drop_column('transcript_state')
