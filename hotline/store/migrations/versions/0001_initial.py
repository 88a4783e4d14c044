"""Initial schema: the whole ledger, plus UPDATE guards on the append-only tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 19:09:30.071523
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# KPIs and audits are recomputed from these; a row, once written, must never change.
APPEND_ONLY_TABLES = ("call_events", "agent_events", "audit_log")

PG_GUARD_FUNCTION = """
CREATE FUNCTION hotline_reject_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: UPDATE is not allowed', TG_TABLE_NAME;
END
$$
"""


def _create_update_guards() -> None:
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        op.execute(PG_GUARD_FUNCTION)
    for table in APPEND_ONLY_TABLES:
        if dialect == "sqlite":
            op.execute(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: UPDATE is not allowed'); END"
            )
        elif dialect == "postgresql":
            op.execute(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION hotline_reject_update()"
            )
        else:
            raise RuntimeError(f"no append-only guard for the {dialect} dialect")


def _drop_update_guards() -> None:
    dialect = op.get_context().dialect.name
    for table in APPEND_ONLY_TABLES:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS hotline_reject_update()")


def upgrade() -> None:
    op.create_table('firms',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('contact_phone', sa.String(length=40), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_firms')),
    sa.UniqueConstraint('name', name=op.f('uq_firms_name'))
    )
    op.create_table('queues',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('strategy', sa.String(length=32), nullable=False),
    sa.Column('skills', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('languages', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('max_wait', sa.Integer(), nullable=False),
    sa.Column('wrap_up', sa.Integer(), nullable=False),
    sa.Column('overflow_code', sa.String(length=64), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_queues'))
    )
    op.create_table('shift_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('line', sa.String(length=40), nullable=False),
    sa.Column('start_time', sa.Time(), nullable=False),
    sa.Column('end_time', sa.Time(), nullable=False),
    sa.Column('night', sa.Boolean(), nullable=False),
    sa.Column('weekdays', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('required', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shift_templates')),
    sa.UniqueConstraint('code', name=op.f('uq_shift_templates_code'))
    )
    op.create_table('skills',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_skills'))
    )
    op.create_table('ticket_counters',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('last_serial', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_ticket_counters'))
    )
    op.create_table('shifts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('line', sa.String(length=40), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('required', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['template_id'], ['shift_templates.id'], name=op.f('fk_shifts_template_id_shift_templates')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shifts')),
    sa.UniqueConstraint('date', 'code', 'line', name=op.f('uq_shifts_date_code_line'))
    )
    op.create_index(op.f('ix_shifts_starts_at'), 'shifts', ['starts_at'], unique=False)
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('firm_id', sa.Integer(), nullable=True),
    sa.Column('role', sa.String(length=32), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('remote_phone', sa.String(length=40), nullable=True),
    sa.Column('sip_uri', sa.String(length=255), nullable=True),
    sa.Column('practice_since', sa.Date(), nullable=True),
    sa.Column('max_shifts_per_month', sa.Integer(), nullable=True),
    sa.Column('max_consecutive_nights', sa.Integer(), nullable=True),
    sa.Column('remote_night_allowed', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['firm_id'], ['firms.id'], name=op.f('fk_users_firm_id_firms')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('work_id', name=op.f('uq_users_work_id'))
    )
    op.create_table('api_sessions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('remote_addr', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_sessions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_sessions_token_hash'))
    )
    op.create_index(op.f('ix_api_sessions_user_id'), 'api_sessions', ['user_id'], unique=False)
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_role', sa.String(length=32), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=64), nullable=True),
    sa.Column('object_id', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('remote_addr', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_audit_log_actor_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_at'), 'audit_log', ['at'], unique=False)
    op.create_table('calls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sip_call_id', sa.String(length=255), nullable=False),
    sa.Column('outbound', sa.Boolean(), nullable=False),
    sa.Column('line_dialed', sa.String(length=40), nullable=False),
    sa.Column('flow', sa.String(length=64), nullable=True),
    sa.Column('caller_number', sa.String(length=40), nullable=False),
    sa.Column('region', sa.String(length=64), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('agent_answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=32), nullable=True),
    sa.Column('worker', sa.String(length=64), nullable=True),
    sa.Column('ivr_path', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('priority', sa.String(length=32), nullable=False),
    sa.Column('language', sa.String(length=32), nullable=True),
    sa.Column('queue_code', sa.String(length=64), nullable=True),
    sa.Column('lawyer_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['lawyer_id'], ['users.id'], name=op.f('fk_calls_lawyer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_calls')),
    sa.UniqueConstraint('sip_call_id', name=op.f('uq_calls_sip_call_id'))
    )
    op.create_index(op.f('ix_calls_caller_number'), 'calls', ['caller_number'], unique=False)
    op.create_index(op.f('ix_calls_started_at'), 'calls', ['started_at'], unique=False)
    op.create_table('known_callers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('green_channel', sa.Boolean(), nullable=False),
    sa.Column('green_reasons', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('added_by', sa.Integer(), nullable=True),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['added_by'], ['users.id'], name=op.f('fk_known_callers_added_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_known_callers')),
    sa.UniqueConstraint('number', name=op.f('uq_known_callers_number'))
    )
    op.create_table('queue_tiers',
    sa.Column('queue_code', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['queue_code'], ['queues.code'], name=op.f('fk_queue_tiers_queue_code_queues')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_queue_tiers_user_id_users')),
    sa.PrimaryKeyConstraint('queue_code', 'user_id', name=op.f('pk_queue_tiers'))
    )
    op.create_table('roster_assignments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shift_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('remote', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shift_id'], ['shifts.id'], name=op.f('fk_roster_assignments_shift_id_shifts')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_roster_assignments_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roster_assignments')),
    sa.UniqueConstraint('shift_id', 'user_id', name=op.f('uq_roster_assignments_shift_id_user_id'))
    )
    op.create_index(op.f('ix_roster_assignments_user_id'), 'roster_assignments', ['user_id'], unique=False)
    op.create_table('unavailability',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_unavailability_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unavailability'))
    )
    op.create_index(op.f('ix_unavailability_user_id'), 'unavailability', ['user_id'], unique=False)
    op.create_table('user_languages',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=32), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_languages_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', 'language', name=op.f('pk_user_languages'))
    )
    op.create_table('user_skills',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('skill_code', sa.String(length=64), nullable=False),
    sa.Column('proficiency', sa.Integer(), nullable=False),
    sa.CheckConstraint('proficiency BETWEEN 1 AND 5', name=op.f('ck_user_skills_proficiency_range')),
    sa.ForeignKeyConstraint(['skill_code'], ['skills.code'], name=op.f('fk_user_skills_skill_code_skills')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_skills_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', 'skill_code', name=op.f('pk_user_skills'))
    )
    op.create_table('agent_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=True),
    sa.Column('state', sa.String(length=32), nullable=True),
    sa.Column('reason', sa.String(length=100), nullable=True),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_agent_events_call_id_calls')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_agent_events_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_events'))
    )
    op.create_index(op.f('ix_agent_events_user_id_at'), 'agent_events', ['user_id', 'at'], unique=False)
    op.create_table('call_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('queue', sa.String(length=64), nullable=True),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_call_events_actor_id_users')),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_call_events_call_id_calls')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_call_events')),
    sa.UniqueConstraint('call_id', 'seq', name=op.f('uq_call_events_call_id_seq'))
    )
    op.create_index(op.f('ix_call_events_kind_at'), 'call_events', ['kind', 'at'], unique=False)
    op.create_table('callback_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('queue_code', sa.String(length=64), nullable=False),
    sa.Column('number', sa.String(length=40), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('place_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('priority', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_callback_requests_call_id_calls')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_callback_requests'))
    )
    op.create_index(op.f('ix_callback_requests_status_place_at'), 'callback_requests', ['status', 'place_at'], unique=False)
    op.create_table('recordings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('channels', sa.Integer(), nullable=False),
    sa.Column('sample_rate', sa.Integer(), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('flagged_reason', sa.String(length=200), nullable=True),
    sa.Column('legal_hold', sa.Boolean(), nullable=False),
    sa.Column('retention_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_recordings_call_id_calls')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recordings')),
    sa.UniqueConstraint('path', name=op.f('uq_recordings_path'))
    )
    op.create_index(op.f('ix_recordings_call_id'), 'recordings', ['call_id'], unique=False)
    op.create_index(op.f('ix_recordings_retention_until'), 'recordings', ['retention_until'], unique=False)
    op.create_table('swap_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('requested_by', sa.Integer(), nullable=False),
    sa.Column('to_user_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['assignment_id'], ['roster_assignments.id'], name=op.f('fk_swap_requests_assignment_id_roster_assignments')),
    sa.ForeignKeyConstraint(['decided_by'], ['users.id'], name=op.f('fk_swap_requests_decided_by_users')),
    sa.ForeignKeyConstraint(['requested_by'], ['users.id'], name=op.f('fk_swap_requests_requested_by_users')),
    sa.ForeignKeyConstraint(['to_user_id'], ['users.id'], name=op.f('fk_swap_requests_to_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_swap_requests'))
    )
    op.create_index(op.f('ix_swap_requests_assignment_id'), 'swap_requests', ['assignment_id'], unique=False)
    op.create_table('tickets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_no', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('caller_number', sa.String(length=40), nullable=True),
    sa.Column('caller_region', sa.String(length=64), nullable=True),
    sa.Column('caller_declined_identity', sa.Boolean(), nullable=False),
    sa.Column('caller_name', sa.String(length=100), nullable=True),
    sa.Column('line', sa.String(length=40), nullable=True),
    sa.Column('ivr_path', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('queue_code', sa.String(length=64), nullable=True),
    sa.Column('lawyer_id', sa.Integer(), nullable=True),
    sa.Column('language', sa.String(length=32), nullable=True),
    sa.Column('category', sa.String(length=32), nullable=True),
    sa.Column('subcategory', sa.String(length=64), nullable=True),
    sa.Column('summary', sa.Text(), nullable=True),
    sa.Column('answer', sa.Text(), nullable=True),
    sa.Column('disposition', sa.String(length=32), nullable=True),
    sa.Column('referral_target', sa.String(length=200), nullable=True),
    sa.Column('source_12345_ticket_id', sa.String(length=64), nullable=True),
    sa.Column('legal_aid_hints', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('priority', sa.String(length=32), nullable=False),
    sa.Column('green_reasons', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('satisfaction', sa.Integer(), nullable=True),
    sa.Column('follow_up_result', sa.Text(), nullable=True),
    sa.Column('callback_number', sa.String(length=40), nullable=True),
    sa.Column('confidential', sa.Boolean(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=True),
    sa.Column('legal_hold', sa.Boolean(), nullable=False),
    sa.CheckConstraint('satisfaction BETWEEN 1 AND 5', name=op.f('ck_tickets_satisfaction_range')),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_tickets_call_id_calls')),
    sa.ForeignKeyConstraint(['lawyer_id'], ['users.id'], name=op.f('fk_tickets_lawyer_id_users')),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], name=op.f('fk_tickets_recording_id_recordings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tickets')),
    sa.UniqueConstraint('ticket_no', name=op.f('uq_tickets_ticket_no'))
    )
    op.create_index(op.f('ix_tickets_call_id'), 'tickets', ['call_id'], unique=False)
    op.create_index(op.f('ix_tickets_caller_number_created_at'), 'tickets', ['caller_number', 'created_at'], unique=False)
    op.create_index(op.f('ix_tickets_created_at'), 'tickets', ['created_at'], unique=False)
    op.create_index(op.f('ix_tickets_due_at'), 'tickets', ['due_at'], unique=False)
    op.create_index(op.f('ix_tickets_lawyer_id'), 'tickets', ['lawyer_id'], unique=False)
    op.create_index(op.f('ix_tickets_status'), 'tickets', ['status'], unique=False)
    op.create_table('transcript_segments',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=False),
    sa.Column('recording_id', sa.Integer(), nullable=True),
    sa.Column('speaker', sa.String(length=32), nullable=False),
    sa.Column('start_s', sa.Float(), nullable=False),
    sa.Column('end_s', sa.Float(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('text_original', sa.Text(), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('model', sa.String(length=100), nullable=True),
    sa.CheckConstraint("source IN ('live', 'batch')", name=op.f('ck_transcript_segments_source_kind')),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_transcript_segments_call_id_calls')),
    sa.ForeignKeyConstraint(['recording_id'], ['recordings.id'], name=op.f('fk_transcript_segments_recording_id_recordings')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transcript_segments'))
    )
    op.create_index(op.f('ix_transcript_segments_call_id_start_s'), 'transcript_segments', ['call_id', 'start_s'], unique=False)
    op.create_table('follow_ups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=64), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('assigned_to', sa.Integer(), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('result', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['assigned_to'], ['users.id'], name=op.f('fk_follow_ups_assigned_to_users')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_follow_ups_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follow_ups'))
    )
    op.create_index(op.f('ix_follow_ups_done_at_due_at'), 'follow_ups', ['done_at', 'due_at'], unique=False)
    op.create_index(op.f('ix_follow_ups_ticket_id'), 'follow_ups', ['ticket_id'], unique=False)
    op.create_table('qa_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('reviewer_id', sa.Integer(), nullable=True),
    sa.Column('automatic', sa.Boolean(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('score', sa.Integer(), nullable=True),
    sa.Column('checklist', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('comments', sa.Text(), nullable=True),
    sa.CheckConstraint('score BETWEEN 0 AND 100', name=op.f('ck_qa_reviews_score_range')),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_qa_reviews_call_id_calls')),
    sa.ForeignKeyConstraint(['reviewer_id'], ['users.id'], name=op.f('fk_qa_reviews_reviewer_id_users')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_qa_reviews_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_qa_reviews'))
    )
    op.create_index(op.f('ix_qa_reviews_call_id'), 'qa_reviews', ['call_id'], unique=False)
    op.create_table('surveys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=True),
    sa.Column('call_id', sa.Integer(), nullable=True),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('score BETWEEN 1 AND 5', name=op.f('ck_surveys_score_range')),
    sa.ForeignKeyConstraint(['call_id'], ['calls.id'], name=op.f('fk_surveys_call_id_calls')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_surveys_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_surveys'))
    )
    op.create_index(op.f('ix_surveys_ticket_id'), 'surveys', ['ticket_id'], unique=False)
    op.create_table('ticket_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('ticket_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('from_status', sa.String(length=32), nullable=True),
    sa.Column('to_status', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_history_ticket_id_tickets')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_ticket_history_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_history'))
    )
    op.create_index(op.f('ix_ticket_history_ticket_id'), 'ticket_history', ['ticket_id'], unique=False)
    _create_update_guards()


def downgrade() -> None:
    _drop_update_guards()
    op.drop_index(op.f('ix_ticket_history_ticket_id'), table_name='ticket_history')
    op.drop_table('ticket_history')
    op.drop_index(op.f('ix_surveys_ticket_id'), table_name='surveys')
    op.drop_table('surveys')
    op.drop_index(op.f('ix_qa_reviews_call_id'), table_name='qa_reviews')
    op.drop_table('qa_reviews')
    op.drop_index(op.f('ix_follow_ups_ticket_id'), table_name='follow_ups')
    op.drop_index(op.f('ix_follow_ups_done_at_due_at'), table_name='follow_ups')
    op.drop_table('follow_ups')
    op.drop_index(op.f('ix_transcript_segments_call_id_start_s'), table_name='transcript_segments')
    op.drop_table('transcript_segments')
    op.drop_index(op.f('ix_tickets_status'), table_name='tickets')
    op.drop_index(op.f('ix_tickets_lawyer_id'), table_name='tickets')
    op.drop_index(op.f('ix_tickets_due_at'), table_name='tickets')
    op.drop_index(op.f('ix_tickets_created_at'), table_name='tickets')
    op.drop_index(op.f('ix_tickets_caller_number_created_at'), table_name='tickets')
    op.drop_index(op.f('ix_tickets_call_id'), table_name='tickets')
    op.drop_table('tickets')
    op.drop_index(op.f('ix_swap_requests_assignment_id'), table_name='swap_requests')
    op.drop_table('swap_requests')
    op.drop_index(op.f('ix_recordings_retention_until'), table_name='recordings')
    op.drop_index(op.f('ix_recordings_call_id'), table_name='recordings')
    op.drop_table('recordings')
    op.drop_index(op.f('ix_callback_requests_status_place_at'), table_name='callback_requests')
    op.drop_table('callback_requests')
    op.drop_index(op.f('ix_call_events_kind_at'), table_name='call_events')
    op.drop_table('call_events')
    op.drop_index(op.f('ix_agent_events_user_id_at'), table_name='agent_events')
    op.drop_table('agent_events')
    op.drop_table('user_skills')
    op.drop_table('user_languages')
    op.drop_index(op.f('ix_unavailability_user_id'), table_name='unavailability')
    op.drop_table('unavailability')
    op.drop_index(op.f('ix_roster_assignments_user_id'), table_name='roster_assignments')
    op.drop_table('roster_assignments')
    op.drop_table('queue_tiers')
    op.drop_table('known_callers')
    op.drop_index(op.f('ix_calls_started_at'), table_name='calls')
    op.drop_index(op.f('ix_calls_caller_number'), table_name='calls')
    op.drop_table('calls')
    op.drop_index(op.f('ix_audit_log_at'), table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_index(op.f('ix_api_sessions_user_id'), table_name='api_sessions')
    op.drop_table('api_sessions')
    op.drop_table('users')
    op.drop_index(op.f('ix_shifts_starts_at'), table_name='shifts')
    op.drop_table('shifts')
    op.drop_table('ticket_counters')
    op.drop_table('skills')
    op.drop_table('shift_templates')
    op.drop_table('queues')
    op.drop_table('firms')
