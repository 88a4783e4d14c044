"""The ledger's tables: everything DOMAIN.md names, so later features add behaviour, not schema.

Conventions, chosen once so every table reads alike:

* Timestamps are :class:`~hotline.store.types.UTCDateTime` (aware UTC on both backends).
* Closed vocabularies are :class:`~hotline.store.types.EnumText` over :mod:`hotline.domain`.
* Lists and free-form details are :class:`~hotline.store.types.JSONValue`.
* Queue codes are plain strings, not foreign keys: queues live in the configuration and a call
  keeps the code it was queued under after the queue is renamed or removed.
* Defaults are Python-side only, so the migration and the models cannot drift on them.
* ``call_events``, ``agent_events`` and ``audit_log`` are append-only; the migration installs
  triggers that reject UPDATE, because KPIs and audits are recomputed from them.
"""

from __future__ import annotations

import datetime as dt
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    Time,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hotline.domain import (
    AgentEventKind,
    AgentState,
    AgentStatus,
    CallEventKind,
    Category,
    Disposition,
    EndReason,
    Language,
    Priority,
    QueueStrategy,
    Role,
    Speaker,
    TicketKind,
    TicketStatus,
)
from hotline.store.types import BigIntPK, EnumText, JSONValue, UTCDateTime

# Named constraints make batch migrations on SQLite and diffs on PostgreSQL deterministic.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

APPEND_ONLY_TABLES = ("call_events", "agent_events", "audit_log")


def utcnow() -> datetime:
    """The default for creation timestamps (aware UTC)."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base carrying the naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _user_fk(nullable: bool = True) -> Mapped[Any]:
    return mapped_column(ForeignKey("users.id"), nullable=nullable)


# --- people -----------------------------------------------------------------------------------


class Firm(Base):
    """A contracted law firm (律所) whose lawyers staff the rota."""

    __tablename__ = "firms"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    contact_phone: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Skill(Base):
    """A routing skill (usually a category code, plus ``general``)."""

    __tablename__ = "skills"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))


class User(Base):
    """Anyone who logs in: duty lawyers, supervisors, schedulers, administrators."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    work_id: Mapped[str] = mapped_column(String(32), unique=True)  # 工号
    name: Mapped[str] = mapped_column(String(100))
    firm_id: Mapped[int | None] = mapped_column(ForeignKey("firms.id"))
    role: Mapped[Role] = mapped_column(EnumText(Role))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    remote_phone: Mapped[str | None] = mapped_column(String(40))  # night duty forwarding
    sip_uri: Mapped[str | None] = mapped_column(String(255))
    practice_since: Mapped[date | None] = mapped_column(Date)  # SME line needs ≥ 3 years
    max_shifts_per_month: Mapped[int | None] = mapped_column(Integer)
    max_consecutive_nights: Mapped[int | None] = mapped_column(Integer)
    remote_night_allowed: Mapped[bool] = mapped_column(Boolean, default=False)
    # Roster rules beyond the columns: off_weekdays, prefer, avoid, lines (hotline.roster).
    roster_rules: Mapped[dict[str, Any] | None] = mapped_column(JSONValue())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    password_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    firm: Mapped[Firm | None] = relationship(lazy="joined")
    skills: Mapped[list[UserSkill]] = relationship(
        cascade="all, delete-orphan", order_by="UserSkill.skill_code", lazy="selectin")
    languages: Mapped[list[UserLanguage]] = relationship(
        cascade="all, delete-orphan", order_by="UserLanguage.position", lazy="selectin")


class UserSkill(Base):
    """A lawyer's skill with proficiency 1 (basic) to 5 (specialist seat)."""

    __tablename__ = "user_skills"
    __table_args__ = (CheckConstraint("proficiency BETWEEN 1 AND 5", name="proficiency_range"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    skill_code: Mapped[str] = mapped_column(ForeignKey("skills.code"), primary_key=True)
    proficiency: Mapped[int] = mapped_column(Integer)


class UserLanguage(Base):
    """A language or dialect a lawyer can serve callers in; ``position`` keeps their order."""

    __tablename__ = "user_languages"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    language: Mapped[Language] = mapped_column(EnumText(Language), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class ApiSession(Base):
    """A console login; only a hash of the bearer token is kept."""

    __tablename__ = "api_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    remote_addr: Mapped[str | None] = mapped_column(String(64))


# --- queues -----------------------------------------------------------------------------------


class Queue(Base):
    """An ACD queue mirrored from the configuration by :func:`hotline.store.queues.sync_queues`.

    Kept in the ledger so reports can name queues that have since left the configuration.
    """

    __tablename__ = "queues"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    strategy: Mapped[QueueStrategy] = mapped_column(EnumText(QueueStrategy))
    skills: Mapped[list[str]] = mapped_column(JSONValue())
    languages: Mapped[list[str]] = mapped_column(JSONValue())
    max_wait: Mapped[int] = mapped_column(Integer)
    wrap_up: Mapped[int] = mapped_column(Integer)
    overflow_code: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class QueueTier(Base):
    """An explicit member of a queue with tier level and order (top-down, sequential)."""

    __tablename__ = "queue_tiers"

    queue_code: Mapped[str] = mapped_column(ForeignKey("queues.code"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, default=1)
    position: Mapped[int] = mapped_column(Integer, default=1)


# --- calls ------------------------------------------------------------------------------------


class Call(Base):
    """One call, written at its first INVITE; the timestamps are denormalised from events."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    sip_call_id: Mapped[str] = mapped_column(String(255), unique=True)
    outbound: Mapped[bool] = mapped_column(Boolean, default=False)  # callbacks, follow-ups
    line_dialed: Mapped[str] = mapped_column(String(40))
    flow: Mapped[str | None] = mapped_column(String(64))
    caller_number: Mapped[str] = mapped_column(String(40), index=True)  # "" when withheld
    region: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    agent_answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[EndReason | None] = mapped_column(EnumText(EndReason))
    worker: Mapped[str | None] = mapped_column(String(64))
    ivr_path: Mapped[list[str]] = mapped_column(JSONValue(), default=list)
    priority: Mapped[Priority] = mapped_column(EnumText(Priority), default=Priority.NORMAL)
    language: Mapped[Language | None] = mapped_column(EnumText(Language))
    queue_code: Mapped[str | None] = mapped_column(String(64))
    lawyer_id: Mapped[int | None] = _user_fk()
    # Speech to text: None (nothing to transcribe yet), "live" (transcribed as it was
    # spoken), "pending" (batch after hang-up: no live capacity, no model, a stream cut
    # short), "batch" (re-transcribed from the recording), "failed" (batch could not).
    transcript_state: Mapped[str | None] = mapped_column(String(16), index=True)


class CallEvent(Base):
    """One step of a call's append-only timeline; every KPI variant is computed from these."""

    __tablename__ = "call_events"
    __table_args__ = (
        UniqueConstraint("call_id", "seq"),  # also the index for "events of this call"
        Index(None, "kind", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[CallEventKind] = mapped_column(EnumText(CallEventKind))
    actor_id: Mapped[int | None] = _user_fk()
    queue: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONValue(), default=dict)


class AgentEvent(Base):
    """A lawyer's append-only status/state timeline (occupancy, idle time, breaks)."""

    __tablename__ = "agent_events"
    __table_args__ = (Index(None, "user_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[AgentEventKind] = mapped_column(EnumText(AgentEventKind))
    status: Mapped[AgentStatus | None] = mapped_column(EnumText(AgentStatus))
    state: Mapped[AgentState | None] = mapped_column(EnumText(AgentState))
    reason: Mapped[str | None] = mapped_column(String(100))  # break reason, logout cause
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSONValue(), default=dict)


class CallbackRequest(Base):
    """A caller who chose to be called back; ``place_at`` keeps their place in line."""

    __tablename__ = "callback_requests"
    __table_args__ = (Index(None, "status", "place_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"))
    queue_code: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(40))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    place_at: Mapped[datetime] = mapped_column(UTCDateTime())
    priority: Mapped[Priority] = mapped_column(EnumText(Priority), default=Priority.NORMAL)
    # pending / dialing / done / failed / cancelled
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class KnownCaller(Base):
    """A number the hotline already knows, e.g. a green-channel caller (法律援助法 第42条)."""

    __tablename__ = "known_callers"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    green_channel: Mapped[bool] = mapped_column(Boolean, default=False)
    green_reasons: Mapped[list[str]] = mapped_column(JSONValue(), default=list)
    note: Mapped[str | None] = mapped_column(Text)
    added_by: Mapped[int | None] = _user_fk()
    added_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- recordings and transcripts ---------------------------------------------------------------


class Recording(Base):
    """A call recording file (stereo: caller left, lawyer right) with its integrity hash."""

    __tablename__ = "recordings"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), index=True)
    path: Mapped[str] = mapped_column(String(500), unique=True)
    sha256: Mapped[str | None] = mapped_column(String(64))
    duration_s: Mapped[float | None] = mapped_column(Float)
    channels: Mapped[int] = mapped_column(Integer, default=2)
    sample_rate: Mapped[int] = mapped_column(Integer, default=8000)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    flagged_reason: Mapped[str | None] = mapped_column(String(200))
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    retention_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class TranscriptSegment(Base):
    """One recognised utterance; ``text_original`` keeps the recogniser output before edits."""

    __tablename__ = "transcript_segments"
    __table_args__ = (
        CheckConstraint("source IN ('live', 'batch')", name="source_kind"),
        Index(None, "call_id", "start_s"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id"))
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id"))
    speaker: Mapped[Speaker] = mapped_column(EnumText(Speaker))
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)
    text: Mapped[str] = mapped_column(Text)
    text_original: Mapped[str | None] = mapped_column(Text)
    confidence: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(8), default="live")
    model: Mapped[str | None] = mapped_column(String(100))


# --- tickets ----------------------------------------------------------------------------------


class Ticket(Base):
    """话务工单: every call forms one; identity fields stay optional (caller may decline)."""

    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint("satisfaction BETWEEN 1 AND 5", name="satisfaction_range"),
        Index(None, "caller_number", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_no: Mapped[str] = mapped_column(String(32), unique=True)  # 12348-20261125-000001
    kind: Mapped[TicketKind] = mapped_column(EnumText(TicketKind), default=TicketKind.CALL)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), index=True)
    status: Mapped[TicketStatus] = mapped_column(
        EnumText(TicketStatus), default=TicketStatus.ACCEPTED, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    caller_number: Mapped[str | None] = mapped_column(String(40))
    caller_region: Mapped[str | None] = mapped_column(String(64))
    caller_declined_identity: Mapped[bool] = mapped_column(Boolean, default=False)
    caller_name: Mapped[str | None] = mapped_column(String(100))
    line: Mapped[str | None] = mapped_column(String(40))
    ivr_path: Mapped[list[str]] = mapped_column(JSONValue(), default=list)
    queue_code: Mapped[str | None] = mapped_column(String(64))
    lawyer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    language: Mapped[Language | None] = mapped_column(EnumText(Language))
    category: Mapped[Category | None] = mapped_column(EnumText(Category))
    subcategory: Mapped[str | None] = mapped_column(String(64))
    summary: Mapped[str | None] = mapped_column(Text)  # 事项
    answer: Mapped[str | None] = mapped_column(Text)  # 答复意见
    disposition: Mapped[Disposition | None] = mapped_column(EnumText(Disposition))
    referral_target: Mapped[str | None] = mapped_column(String(200))
    source_12345_ticket_id: Mapped[str | None] = mapped_column(String(64))
    legal_aid_hints: Mapped[list[str]] = mapped_column(JSONValue(), default=list)
    priority: Mapped[Priority] = mapped_column(EnumText(Priority), default=Priority.NORMAL)
    green_reasons: Mapped[list[str]] = mapped_column(JSONValue(), default=list)
    tags: Mapped[list[str]] = mapped_column(JSONValue(), default=list)
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    follow_up_result: Mapped[str | None] = mapped_column(Text)
    callback_number: Mapped[str | None] = mapped_column(String(40))
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    recording_id: Mapped[int | None] = mapped_column(ForeignKey("recordings.id"))
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    # What the transcript suggests (hotline.speech.text.draft): category, summary, amounts,
    # dates, parties, urgency flags; the wrap-up form opens pre-filled with it.
    suggested_category: Mapped[Category | None] = mapped_column(EnumText(Category))
    draft: Mapped[dict[str, Any] | None] = mapped_column(JSONValue())


class TicketCounter(Base):
    """The last ticket serial issued per day, so ticket numbers stay gap-free under concurrency."""

    __tablename__ = "ticket_counters"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last_serial: Mapped[int] = mapped_column(Integer, default=0)


class TicketHistory(Base):
    """A status transition of a ticket, with who did it and why (the closed loop's audit)."""

    __tablename__ = "ticket_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    from_status: Mapped[TicketStatus | None] = mapped_column(EnumText(TicketStatus))
    to_status: Mapped[TicketStatus] = mapped_column(EnumText(TicketStatus))
    user_id: Mapped[int | None] = _user_fk()
    note: Mapped[str | None] = mapped_column(Text)


class Survey(Base):
    """A satisfaction rating (IVR after the call, SMS, or phone follow-up)."""

    __tablename__ = "surveys"
    __table_args__ = (CheckConstraint("score BETWEEN 1 AND 5", name="score_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"))
    score: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16), default="ivr")  # ivr / sms / phone
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class FollowUp(Base):
    """A 回访 due on a ticket (every dissatisfied rating gets one)."""

    __tablename__ = "follow_ups"
    __table_args__ = (Index(None, "done_at", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    reason: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    assigned_to: Mapped[int | None] = _user_fk()
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # told to a lawyer
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    result: Mapped[str | None] = mapped_column(Text)


class QaReview(Base):
    """A 质检 review of a call or ticket, by a person or by the automatic rules."""

    __tablename__ = "qa_reviews"
    __table_args__ = (CheckConstraint("score BETWEEN 0 AND 100", name="score_range"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    reviewer_id: Mapped[int | None] = _user_fk()  # None for automatic reviews
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    score: Mapped[int | None] = mapped_column(Integer)
    checklist: Mapped[dict[str, Any]] = mapped_column(JSONValue(), default=dict)
    comments: Mapped[str | None] = mapped_column(Text)


class AuditLog(Base):
    """Who did what to which object; append-only."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor_id: Mapped[int | None] = _user_fk()
    actor_role: Mapped[Role | None] = mapped_column(EnumText(Role))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str | None] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONValue(), default=dict)
    remote_addr: Mapped[str | None] = mapped_column(String(64))


# --- roster -----------------------------------------------------------------------------------


class ShiftTemplate(Base):
    """A recurring shift pattern (day, evening, remote night) the rota is built from."""

    __tablename__ = "shift_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    line: Mapped[str] = mapped_column(String(40))
    start_time: Mapped[time] = mapped_column(Time)  # hotline local time
    end_time: Mapped[time] = mapped_column(Time)  # may be before start: crosses midnight
    night: Mapped[bool] = mapped_column(Boolean, default=False)
    weekdays: Mapped[list[int]] = mapped_column(JSONValue(), default=list)  # 0 = Monday
    required: Mapped[dict[str, Any]] = mapped_column(JSONValue(), default=dict)


class Shift(Base):
    """One concrete shift on a date; ``required`` counts seats per skill/language."""

    __tablename__ = "shifts"
    __table_args__ = (UniqueConstraint("date", "code", "line"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date)  # hotline local date
    code: Mapped[str] = mapped_column(String(32))
    line: Mapped[str] = mapped_column(String(40))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("shift_templates.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    required: Mapped[dict[str, Any]] = mapped_column(JSONValue(), default=dict)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    name: Mapped[str | None] = mapped_column(String(100))
    night: Mapped[bool] = mapped_column(Boolean, default=False)
    remote: Mapped[bool] = mapped_column(Boolean, default=False)
    kind: Mapped[str] = mapped_column(String(16), default="workday")  # workday/weekend/holiday


class RosterAssignment(Base):
    """A lawyer on a shift; ``remote`` marks night duty from the lawyer's own phone."""

    __tablename__ = "roster_assignments"
    __table_args__ = (UniqueConstraint("shift_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shift_id: Mapped[int] = mapped_column(ForeignKey("shifts.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # planned / confirmed / swapped / absent
    status: Mapped[str] = mapped_column(String(16), default="planned")
    remote: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SwapRequest(Base):
    """A lawyer asking to hand an assignment to a colleague; a scheduler decides."""

    __tablename__ = "swap_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("roster_assignments.id"), index=True)
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    to_user_id: Mapped[int | None] = _user_fk()
    # An exchange: the requester takes this assignment of the colleague's in return.
    take_assignment_id: Mapped[int | None] = mapped_column(ForeignKey("roster_assignments.id"))
    # pending / approved / rejected / cancelled
    status: Mapped[str] = mapped_column(String(16), default="pending")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by: Mapped[int | None] = _user_fk()
    note: Mapped[str | None] = mapped_column(Text)


class Unavailability(Base):
    """A period a lawyer cannot be rostered (leave, court dates)."""

    __tablename__ = "unavailability"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(String(200))


class RosterPlan(Base):
    """One solver run for a month: its figures, the staffing need it met, its publication."""

    __tablename__ = "roster_plans"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)  # 2026-12
    status: Mapped[str] = mapped_column(String(16))  # draft / published / superseded
    solver_status: Mapped[str] = mapped_column(String(16))
    objective: Mapped[float] = mapped_column(Float)
    bound: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)
    changes: Mapped[int] = mapped_column(Integer, default=0)
    figures: Mapped[dict[str, Any]] = mapped_column(JSONValue(), default=dict)
    # Lawyers needed per hour of the week ("weekday-hour" → count) from staffing, if used.
    need: Mapped[dict[str, Any]] = mapped_column(JSONValue(), default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by: Mapped[int | None] = _user_fk()
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    published_by: Mapped[int | None] = _user_fk()


class HandoverNote(Base):
    """What the outgoing shift tells the incoming one (交接班记录)."""

    __tablename__ = "handover_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    line: Mapped[str] = mapped_column(String(40))
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("shifts.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class SchedulerLease(Base):
    """Which server node runs the scheduler role (one at a time); renewed while alive."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- scheduler --------------------------------------------------------------------------------


class SchedulerJob(Base):
    """APScheduler's job store (``SQLAlchemyJobStore``): its own layout, kept by Alembic.

    Jobs (the nightly batch transcription, shift edges) survive a restart in this table.
    """

    __tablename__ = "apscheduler_jobs"

    id: Mapped[str] = mapped_column(Unicode(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), index=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary)
