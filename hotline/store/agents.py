"""Lawyers' append-only desk timeline (agent_events): occupancy, idle time, breaks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.domain import AgentEventKind, AgentState, AgentStatus
from hotline.store.tables import AgentEvent, User


def record(session: Session, work_id: str, at: datetime, kind: AgentEventKind,
           status: AgentStatus, state: AgentState, reason: str = "") -> bool:
    """Append one change of a lawyer's desk; False for a desk with no account (duty phones)."""
    user_id = session.scalar(select(User.id).where(User.work_id == work_id))
    if user_id is None:
        return False
    session.add(AgentEvent(user_id=user_id, at=at, kind=kind, status=status, state=state,
                           reason=reason or None))
    return True


def timeline(session: Session, work_id: str) -> list[tuple[datetime, str, str, str]]:
    """(at, kind, status, state) of a lawyer, oldest first."""
    rows = session.execute(
        select(AgentEvent.at, AgentEvent.kind, AgentEvent.status, AgentEvent.state)
        .join(User, User.id == AgentEvent.user_id).where(User.work_id == work_id)
        .order_by(AgentEvent.id)).all()
    return [(r[0], r[1].value, r[2].value if r[2] else "", r[3].value if r[3] else "")
            for r in rows]
