"""The call ledger: a call and its ticket from the first INVITE, events as they happen.

Functions take a Session and plain values and return plain values; the coordinator calls
them from its single ledger-writer thread, in order, so a call's events keep their sequence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline.domain import CallEventKind, Category, EndReason, Language, Priority
from hotline.store.tables import (
    Call,
    CallEvent,
    FollowUp,
    Recording,
    Ticket,
    TicketCounter,
    User,
)

# A satisfaction score at or below this (2 = 不满意, 1 = 非常不满意) gets a 回访.
DISSATISFIED = 2


@dataclass(frozen=True)
class OpenedCall:
    """Ids of a call just written: the ledger row and its public ticket number."""

    call_id: int
    ticket_id: int
    ticket_no: str


@dataclass(frozen=True)
class OpenCallView:
    """A call a crash left open."""

    call_id: int
    ticket_no: str | None
    started_at: datetime
    worker: str | None


def next_ticket_no(session: Session, day: date, prefix: str = "12348") -> str:
    """The next gap-free ticket number of ``day`` (``12348-20261125-000001``)."""
    for _ in range(3):
        bumped = session.execute(
            update(TicketCounter).where(TicketCounter.day == day)
            .values(last_serial=TicketCounter.last_serial + 1)
        )
        if bumped.rowcount == 0:  # type: ignore[attr-defined]
            try:
                with session.begin_nested():
                    session.add(TicketCounter(day=day, last_serial=1))
            except IntegrityError:
                continue  # another writer created the day first: bump it instead
        serial = session.scalar(select(TicketCounter.last_serial)
                                .where(TicketCounter.day == day))
        return f"{prefix}-{day:%Y%m%d}-{serial:06d}"
    raise RuntimeError("ticket counter contention")  # pragma: no cover - three lost races


def open_call(session: Session, *, sip_call_id: str, line: str, caller_number: str,
              flow: str, worker: str, at: datetime, local_day: date,
              data: Mapping[str, Any] | None = None) -> OpenedCall:
    """Write the call, its ticket (受理) and the first event, before anything is played."""
    call = Call(sip_call_id=sip_call_id, line_dialed=line, flow=flow,
                caller_number=caller_number, started_at=at, worker=worker)
    session.add(call)
    session.flush()
    ticket = Ticket(ticket_no=next_ticket_no(session, local_day), call_id=call.id,
                    created_at=at, caller_number=caller_number, line=line)
    session.add(ticket)
    session.add(CallEvent(call_id=call.id, seq=1, at=at, kind=CallEventKind.OFFERED,
                          data=dict(data or {})))
    session.flush()
    return OpenedCall(call.id, ticket.id, ticket.ticket_no)


def append_events(session: Session, call_id: int,
                  events: Iterable[tuple[datetime, CallEventKind, Mapping[str, Any]]]) -> int:
    """Append events in order after the call's last one; returns how many were written."""
    seq = session.scalar(select(func.max(CallEvent.seq)).where(CallEvent.call_id == call_id))
    seq = seq or 0
    count = 0
    for at, kind, data in events:
        seq += 1
        count += 1
        session.add(CallEvent(call_id=call_id, seq=seq, at=at, kind=kind, data=dict(data)))
    session.flush()
    return count


def update_call(session: Session, call_id: int, **fields: Any) -> None:
    """Set denormalised call columns (answered_at, queued_at, ivr_path, priority...)."""
    if fields:
        session.execute(update(Call).where(Call.id == call_id).values(**fields))


_TICKET_FIELDS = {"category": Category, "priority": Priority, "language": Language}


def close_call(session: Session, call_id: int, *, at: datetime, reason: EndReason,
               ivr_vars: Mapping[str, Any], ivr_path: list[str] | None,
               data: Mapping[str, Any] | None = None) -> None:
    """End the call (once: a second close is ignored) and copy the IVR's fields to its ticket."""
    call = session.get(Call, call_id)
    if call is None or call.ended_at is not None:
        return
    call.ended_at = at
    call.end_reason = reason
    if ivr_path is not None:
        call.ivr_path = ivr_path
    ticket = session.scalar(select(Ticket).where(Ticket.call_id == call_id))
    if ticket is not None:
        if ivr_path is not None:
            ticket.ivr_path = ivr_path
        if ticket.queue_code is None:
            ticket.queue_code = call.queue_code  # the queue the caller waited in last
        for name, vocab in _TICKET_FIELDS.items():
            value = ivr_vars.get(name)
            if value in {m.value for m in vocab}:
                setattr(ticket, name, vocab(value))
                if name in ("priority", "language"):
                    setattr(call, name, vocab(value))
        if isinstance(ivr_vars.get("tags"), list):
            ticket.tags = [str(t) for t in ivr_vars["tags"]]
        if ivr_vars.get("green_reason"):
            ticket.green_reasons = [str(ivr_vars["green_reason"])]
        score = ivr_vars.get("satisfaction")
        if isinstance(score, int) and 1 <= score <= 5:
            ticket.satisfaction = score
            if score <= DISSATISFIED:
                # Every dissatisfied rating gets a 回访 (supervisors, by the next day).
                session.add(FollowUp(ticket_id=ticket.id, reason="dissatisfied",
                                     due_at=at + timedelta(days=1)))
        if ivr_vars.get("callback_number"):
            ticket.callback_number = str(ivr_vars["callback_number"])
    append_events(session, call_id, [(at, CallEventKind.ENDED,
                                      {"reason": reason.value, **dict(data or {})})])


def assign_lawyer(session: Session, call_id: int, work_id: str) -> None:
    """The lawyer who took the call, on the call and its ticket (for 首问负责 next time)."""
    user_id = session.scalar(select(User.id).where(User.work_id == work_id))
    if user_id is None:
        return  # a duty phone without an account
    session.execute(update(Call).where(Call.id == call_id).values(lawyer_id=user_id))
    session.execute(update(Ticket).where(Ticket.call_id == call_id).values(lawyer_id=user_id))


def add_recording(session: Session, call_id: int, path: str, started_at: datetime) -> int:
    """Register a recording as it starts, so a crash leaves a row to repair."""
    rec = Recording(call_id=call_id, path=path, started_at=started_at, channels=2,
                    sample_rate=8000)
    session.add(rec)
    session.flush()
    ticket = session.scalar(select(Ticket).where(Ticket.call_id == call_id))
    if ticket is not None:
        ticket.recording_id = rec.id
    return rec.id


def close_recording(session: Session, recording_id: int, *, sha256: str, seconds: float,
                    size: int, closed_at: datetime, flagged: str | None) -> None:
    """Store the hash and length of a closed recording (and why it is flagged, if it is)."""
    rec = session.get(Recording, recording_id)
    if rec is None:
        return
    rec.sha256, rec.duration_s, rec.size_bytes = sha256, seconds, size
    rec.closed_at, rec.flagged_reason = closed_at, flagged


def open_calls(session: Session) -> list[OpenCallView]:
    """Calls with no end: what a crash or restart left behind."""
    rows = session.execute(
        select(Call.id, Ticket.ticket_no, Call.started_at, Call.worker)
        .outerjoin(Ticket, Ticket.call_id == Call.id)
        .where(Call.ended_at.is_(None)).order_by(Call.id)
    ).all()
    return [OpenCallView(r[0], r[1], r[2], r[3]) for r in rows]


def open_recordings(session: Session, skip_calls: Iterable[int] = ()) -> list[tuple[int, str]]:
    """Recordings never closed: (id, path), to repair after a crash."""
    query = select(Recording.id, Recording.path).where(Recording.closed_at.is_(None))
    skip = list(skip_calls)
    if skip:
        query = query.where(Recording.call_id.is_(None) | Recording.call_id.not_in(skip))
    return [(r[0], r[1]) for r in session.execute(query).all()]


@dataclass(frozen=True)
class HeldCallView:
    """An open call a worker carried through a coordinator restart, as the ledger has it."""

    call_id: int
    ticket_no: str
    started_at: datetime
    caller_number: str
    line: str
    recording_id: int | None
    recording_started_at: datetime | None


def find_open_call(session: Session, sip_call_id: str) -> HeldCallView | None:
    """The open call with this SIP Call-ID (the newest, if a trunk reused one)."""
    row = session.execute(
        select(Call.id, Ticket.ticket_no, Call.started_at, Call.caller_number,
               Call.line_dialed)
        .outerjoin(Ticket, Ticket.call_id == Call.id)
        .where(Call.sip_call_id == sip_call_id, Call.ended_at.is_(None))
        .order_by(Call.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    rec = session.execute(
        select(Recording.id, Recording.started_at)
        .where(Recording.call_id == row[0], Recording.closed_at.is_(None))
        .order_by(Recording.id.desc()).limit(1)
    ).first()
    return HeldCallView(row[0], row[1] or "", row[2], row[3] or "", row[4] or "",
                        rec[0] if rec else None, rec[1] if rec else None)


def open_call_ids(session: Session, sip_call_ids: Iterable[str]) -> set[int]:
    """Ids of the open calls with these SIP Call-IDs."""
    wanted = list(sip_call_ids)
    if not wanted:
        return set()
    return set(session.scalars(select(Call.id).where(Call.sip_call_id.in_(wanted),
                                                     Call.ended_at.is_(None))))
