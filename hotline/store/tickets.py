"""Tickets after the call: the lawyer's wrap-up (事项, 答复意见, disposition) and the closed loop.

:func:`submit_wrapup` fills a call's ticket and moves it along 受理 → 办理 → 办结: a question
answered (or referred, or sent to legal aid...) is closed at once; a reply by appointment
(约期答复) stays in 办理 with a due date. Every move is a ``ticket_history`` row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hotline.domain import Category, Disposition, Language, Role, TicketStatus
from hotline.errors import ConflictError, DomainError, NotFoundError
from hotline.speech.text.masking import mask_numbers
from hotline.store.tables import FollowUp, Ticket, TicketHistory, User
from hotline.store.users import UserView

# 约期答复: the reply is due within this many days (DOMAIN.md: e.g. within 3 days).
APPOINTMENT_DAYS = 3
# Dispositions that need no legal content (a silent call, a non-legal matter).
_NO_CONTENT = {Disposition.DROPPED, Disposition.NON_LEGAL}


@dataclass(frozen=True)
class WrapUp:
    """What the lawyer writes after the call."""

    disposition: Disposition
    category: Category | None = None
    subcategory: str | None = None
    summary: str | None = None
    answer: str | None = None
    referral_target: str | None = None
    caller_name: str | None = None
    caller_declined_identity: bool = False
    callback_number: str | None = None
    language: Language | None = None
    tags: tuple[str, ...] = ()
    legal_aid_hints: tuple[str, ...] = ()
    confidential: bool = False
    # 约期答复: the day the reply is due (default: in APPOINTMENT_DAYS); otherwise the day
    # of a follow-up call (回访), if one is wanted.
    follow_up_on: date | None = None


def problems(w: WrapUp, today: date | None = None) -> list[str]:
    """Every missing or inconsistent field, in Chinese (empty: the wrap-up is complete).

    The consoles run the same check before submitting (``today`` in the hotline's zone).
    """
    out = []
    if w.disposition not in _NO_CONTENT:
        if w.category is None:
            out.append("请选择咨询类别")
        if not (w.summary or "").strip():
            out.append("请填写事项")
        if w.disposition is not Disposition.APPOINTMENT and not (w.answer or "").strip():
            out.append("请填写答复意见")
    if w.disposition is Disposition.REFERRED and not (w.referral_target or "").strip():
        out.append("转办须填写转办单位 (例如 12345)")
    if w.disposition is Disposition.EMERGENCY and not (w.referral_target or "").strip():
        out.append("紧急转接须填写转接去向 (110 / 120)")
    if w.follow_up_on is not None and today is not None and w.follow_up_on < today:
        out.append("答复/回访日期不能早于今天")
    return out


def submit_wrapup(session: Session, ticket_no: str, user: UserView, wrap: WrapUp,
                  now: datetime, tz: tzinfo = UTC) -> dict[str, object]:
    """Fill the ticket and move its status; the caller's lawyer only (or a supervisor).

    Raises:
        NotFoundError: ``ticket.not_found`` (also for someone else's ticket).
        ConflictError: ``ticket.closed`` when it is past 办理.
        DomainError: ``ticket.incomplete`` naming every missing field.
    """
    ticket = session.scalar(select(Ticket).where(Ticket.ticket_no == ticket_no))
    staff = user.role in (Role.SUPERVISOR, Role.ADMIN)
    if ticket is None or (not staff and ticket.lawyer_id != user.id):
        raise NotFoundError("ticket.not_found", ticket=ticket_no)
    if ticket.status not in (TicketStatus.ACCEPTED, TicketStatus.PROCESSING):
        raise ConflictError("ticket.closed", ticket=ticket_no, status=ticket.status.label)
    missing = problems(wrap, now.astimezone(tz).date())
    if missing:
        raise DomainError("ticket.incomplete", problems="; ".join(missing))
    before = ticket.status
    for name in ("disposition", "category", "subcategory", "summary", "answer",
                 "referral_target", "caller_name", "caller_declined_identity",
                 "callback_number", "language", "confidential"):
        value = getattr(wrap, name)
        if value is not None and name in ("summary", "answer"):
            # Personal numbers typed into the ticket are masked like transcripts: the
            # unmasked numbers stay only in the access-controlled recording.
            value = mask_numbers(value)[0]
        if value is not None:
            setattr(ticket, name, value)
    ticket.tags = list(wrap.tags)
    ticket.legal_aid_hints = list(wrap.legal_aid_hints)
    due = (datetime.combine(wrap.follow_up_on, time(23, 59, 59), tzinfo=tz)
           if wrap.follow_up_on is not None else None)
    if wrap.disposition is Disposition.APPOINTMENT:
        ticket.status = TicketStatus.PROCESSING
        ticket.due_at = due or now + timedelta(days=APPOINTMENT_DAYS)
    else:
        ticket.status = TicketStatus.CLOSED
        ticket.closed_at = now
        ticket.due_at = due  # the follow-up call (回访), when one is wanted
        session.execute(delete(FollowUp).where(FollowUp.ticket_id == ticket.id,
                                               FollowUp.reason == "requested",
                                               FollowUp.done_at.is_(None)))
        if wrap.follow_up_on is not None:
            # Offered to the ticket's lawyer on the morning of the day chosen.
            session.add(FollowUp(ticket_id=ticket.id, reason="requested",
                                 due_at=datetime.combine(wrap.follow_up_on, time(9), tzinfo=tz),
                                 assigned_to=ticket.lawyer_id or (None if staff else user.id)))
    if ticket.lawyer_id is None and not staff:
        ticket.lawyer_id = user.id
    session.add(TicketHistory(ticket_id=ticket.id, at=now, from_status=before,
                              to_status=ticket.status, user_id=user.id,
                              note=f"话后整理: {wrap.disposition.label}"))
    session.flush()
    lawyer = session.scalar(select(User.work_id).where(User.id == ticket.lawyer_id)) \
        if ticket.lawyer_id is not None else None
    return {"ticket_no": ticket.ticket_no, "status": ticket.status.value, "lawyer": lawyer,
            "status_label": ticket.status.label,
            "due_at": ticket.due_at.isoformat() if ticket.due_at else None,
            "closed_at": ticket.closed_at.isoformat() if ticket.closed_at else None,
            "disposition": wrap.disposition.value}
