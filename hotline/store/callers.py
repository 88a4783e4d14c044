"""Caller facts from the ledger, looked up when a call arrives so flows can branch on them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.callers import CallerFacts
from hotline.domain import GreenReason
from hotline.store.tables import KnownCaller, Ticket, User

_GREEN_REASONS = frozenset(r.value for r in GreenReason)


def _green_reasons(raw: list[str]) -> tuple[GreenReason, ...]:
    # A reason dropped from the vocabulary must not stop the call from being routed.
    return tuple(GreenReason(r) for r in raw if r in _GREEN_REASONS)


def lookup_caller_facts(session: Session, number: str, now: datetime,
                        window_days: int) -> CallerFacts:
    """What the ledger knows about ``number`` at ``now``.

    ``repeat`` is true when a ticket for this number was created within ``window_days``
    before ``now``; ``last_lawyer`` is that latest ticket's lawyer work id, so 首问负责
    routing can offer the caller the same lawyer. ``known`` and ``green_channel`` come from
    the known-caller list. A withheld number (empty) knows nothing.
    """
    number = number.strip()
    if not number:
        return CallerFacts()
    since = now - timedelta(days=window_days)
    latest = session.execute(
        select(Ticket.ticket_no, Ticket.caller_region, User.work_id)
        .outerjoin(User, User.id == Ticket.lawyer_id)
        .where(Ticket.caller_number == number,
               Ticket.created_at >= since, Ticket.created_at <= now)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(1)
    ).first()
    known = session.scalar(select(KnownCaller).where(KnownCaller.number == number))
    return CallerFacts(
        number=number,
        region=(latest.caller_region or "") if latest is not None else "",
        known=known is not None,
        repeat=latest is not None,
        last_ticket_no=latest.ticket_no if latest is not None else None,
        last_lawyer=latest.work_id if latest is not None else None,
        green_channel=bool(known and known.green_channel),
        green_reasons=_green_reasons(known.green_reasons) if known is not None else (),
    )


def caller_history(session: Session, number: str, before: datetime,
                   limit: int = 20) -> list[dict[str, object]]:
    """A caller's earlier tickets (newest first) for the lawyer who talks to them now.

    Confidential tickets show only their number and date.
    """
    number = number.strip()
    if not number:
        return []
    rows = session.execute(
        select(Ticket, User.work_id, User.name)
        .outerjoin(User, User.id == Ticket.lawyer_id)
        .where(Ticket.caller_number == number, Ticket.created_at < before)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit)
    ).all()
    out: list[dict[str, object]] = []
    for ticket, work_id, name in rows:
        item: dict[str, object] = {"ticket_no": ticket.ticket_no,
                                   "created_at": ticket.created_at.isoformat()}
        if not ticket.confidential:
            item.update({
                "status": ticket.status.value, "status_label": ticket.status.label,
                "category": ticket.category.value if ticket.category else None,
                "category_label": ticket.category.label if ticket.category else None,
                "summary": ticket.summary, "answer": ticket.answer,
                "disposition": ticket.disposition.value if ticket.disposition else None,
                "lawyer": work_id, "lawyer_name": name})
        out.append(item)
    return out
