"""The roster: shift details, plans, handover notes, exchanges, the scheduler lease.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 10:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('roster_rules', JSON, nullable=True))
    with op.batch_alter_table('shifts') as batch:
        batch.add_column(sa.Column('name', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('night', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('remote', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('kind', sa.String(length=16), nullable=False,
                                   server_default='workday'))
    with op.batch_alter_table('shifts') as batch:
        batch.alter_column('night', server_default=None)
        batch.alter_column('remote', server_default=None)
        batch.alter_column('kind', server_default=None)
    with op.batch_alter_table('follow_ups') as batch:
        batch.add_column(sa.Column('offered_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('swap_requests') as batch:
        batch.add_column(sa.Column('take_assignment_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f('fk_swap_requests_take_assignment_id_roster_assignments'),
            'roster_assignments', ['take_assignment_id'], ['id'])
    op.create_table('roster_plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('solver_status', sa.String(length=16), nullable=False),
    sa.Column('objective', sa.Float(), nullable=False),
    sa.Column('bound', sa.Float(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('changes', sa.Integer(), nullable=False),
    sa.Column('figures', JSON, nullable=False),
    sa.Column('need', JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('published_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'],
                            name=op.f('fk_roster_plans_created_by_users')),
    sa.ForeignKeyConstraint(['published_by'], ['users.id'],
                            name=op.f('fk_roster_plans_published_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_plans'))
    )
    op.create_index(op.f('ix_roster_plans_month'), 'roster_plans', ['month'], unique=False)
    op.create_table('handover_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('line', sa.String(length=40), nullable=False),
    sa.Column('shift_id', sa.Integer(), nullable=True),
    sa.Column('author_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'],
                            name=op.f('fk_handover_notes_author_id_users')),
    sa.ForeignKeyConstraint(['shift_id'], ['shifts.id'],
                            name=op.f('fk_handover_notes_shift_id_shifts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_handover_notes'))
    )
    op.create_index(op.f('ix_handover_notes_created_at'), 'handover_notes', ['created_at'],
                    unique=False)
    op.create_table('scheduler_lease',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_scheduler_lease'))
    )


def downgrade() -> None:
    op.drop_table('scheduler_lease')
    op.drop_index(op.f('ix_handover_notes_created_at'), table_name='handover_notes')
    op.drop_table('handover_notes')
    op.drop_index(op.f('ix_roster_plans_month'), table_name='roster_plans')
    op.drop_table('roster_plans')
    with op.batch_alter_table('swap_requests') as batch:
        batch.drop_constraint(op.f('fk_swap_requests_take_assignment_id_roster_assignments'),
                              type_='foreignkey')
        batch.drop_column('take_assignment_id')
    with op.batch_alter_table('follow_ups') as batch:
        batch.drop_column('offered_at')
    with op.batch_alter_table('shifts') as batch:
        batch.drop_column('kind')
        batch.drop_column('remote')
        batch.drop_column('night')
        batch.drop_column('name')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('roster_rules')
