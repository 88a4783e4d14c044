"""The scheduler role's periodic checks, as ledger queries (one node runs them).

- follow-ups (回访) that fell due become offers to the right lawyer (the one assigned, else
  the ticket's lawyer; supervisors when neither is known);
- tickets past their due date that are not closed are escalated once to supervisors;
- lawyers logged in anywhere (the latest agent event of each), for the unstaffed-shift
  alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hotline.domain import AgentStatus, TicketStatus
from hotline.store.tables import AgentEvent, FollowUp, Ticket, TicketHistory, User

OPEN_TICKETS = (TicketStatus.ACCEPTED, TicketStatus.PROCESSING)


@dataclass(frozen=True)
class DueFollowUp:
    """A 回访 that fell due, and whose it is."""

    id: int
    ticket_no: str
    due_at: datetime
    reason: str
    work_id: str | None


@dataclass(frozen=True)
class Overdue:
    """A ticket past its due date."""

    ticket_no: str
    due_at: datetime
    status: str
    work_id: str | None


def due_follow_ups(session: Session, now: datetime) -> list[DueFollowUp]:
    """Follow-ups due and not yet offered; marks them offered."""
    rows = session.execute(
        select(FollowUp, Ticket).join(Ticket, FollowUp.ticket_id == Ticket.id)
        .where(FollowUp.done_at.is_(None), FollowUp.offered_at.is_(None),
               FollowUp.due_at <= now).order_by(FollowUp.due_at).limit(200)).all()
    out = []
    for follow, ticket in rows:
        # A dissatisfied rating is followed up by supervisors, not by the lawyer rated.
        owner = follow.assigned_to or (None if follow.reason == "dissatisfied"
                                       else ticket.lawyer_id)
        work_id = session.scalar(select(User.work_id).where(User.id == owner)) if owner else None
        follow.offered_at = now
        out.append(DueFollowUp(follow.id, ticket.ticket_no, follow.due_at,
                               follow.reason or "", work_id))
    session.flush()
    return out


def escalate_overdue(session: Session, now: datetime) -> list[Overdue]:
    """Open tickets past due, not escalated yet: mark escalated (with history)."""
    rows = session.scalars(
        select(Ticket).where(Ticket.due_at < now, Ticket.escalated_at.is_(None),
                             Ticket.status.in_(OPEN_TICKETS)).order_by(Ticket.due_at)
        .limit(200)).all()
    out = []
    for t in rows:
        t.escalated_at = now
        session.add(TicketHistory(ticket_id=t.id, at=now, from_status=t.status,
                                  to_status=t.status, note="逾期未办结, 已上报班长"))
        work_id = session.scalar(select(User.work_id).where(User.id == t.lawyer_id)) \
            if t.lawyer_id else None
        out.append(Overdue(t.ticket_no, t.due_at or now, t.status.value, work_id))
    session.flush()
    return out


def logged_in(session: Session) -> set[str]:
    """Lawyers whose latest agent event leaves them logged in (on any node)."""
    latest = (select(AgentEvent.user_id, func.max(AgentEvent.id).label("last"))
              .group_by(AgentEvent.user_id).subquery())
    rows = session.execute(
        select(User.work_id, AgentEvent.status).join(latest, AgentEvent.id == latest.c.last)
        .join(User, User.id == AgentEvent.user_id)).all()
    return {w for w, status in rows if status is not None and status != AgentStatus.LOGGED_OUT}
