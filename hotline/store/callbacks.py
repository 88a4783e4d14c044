"""Callback requests (回拨) in the ledger: asked for in the IVR, kept across restarts.

A request keeps the caller's place in line (``place_at``: when they first queued). Each
try is an outbound call of its own with a ticket of kind 回拨请求; the request's status
moves pending → dialing → done, or back to pending for another try, or failed after the
last one. A restart finds requests left ``dialing`` and puts them back to ``pending``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.domain import CallEventKind, Language, Priority, TicketKind, TicketStatus
from hotline.store.calls import OpenedCall, next_ticket_no
from hotline.store.tables import Call, CallbackRequest, CallEvent, Ticket, TicketHistory

PENDING, DIALING, DONE, FAILED = "pending", "dialing", "done", "failed"
# The SIP Call-ID (and worker key) of a try: callback-<request id>-<random>.
CALL_PREFIX = "callback-"


@dataclass(frozen=True)
class CallbackView:
    """A request waiting for its turn."""

    id: int
    number: str
    queue: str
    priority: Priority
    language: Language
    place_at: datetime
    attempts: int
    ticket_no: str  # the ticket of the call that asked


def request_callback(session: Session, call_id: int, *, number: str, queue: str,
                     priority: Priority, place_at: datetime, at: datetime) -> CallbackView:
    """Keep a caller's request; their ticket notes it."""
    request = CallbackRequest(call_id=call_id, queue_code=queue, number=number,
                              requested_at=at, place_at=place_at, priority=priority,
                              status=PENDING)
    session.add(request)
    session.flush()
    ticket = session.scalar(select(Ticket).where(Ticket.call_id == call_id))
    if ticket is not None:
        session.add(TicketHistory(ticket_id=ticket.id, at=at, from_status=ticket.status,
                                  to_status=ticket.status, note="来电人选择回拨, 已排队等待"))
    return _view(session, request)


def open_requests(session: Session) -> list[CallbackView]:
    """Requests still to be served, in line order.

    A request left ``dialing`` (the node stopped during a try) is done when that try's
    caller had answered (the conversation may even have gone on in its worker), else it goes
    back to ``pending`` without the try counting.
    """
    rows = session.scalars(select(CallbackRequest)
                           .where(CallbackRequest.status.in_((PENDING, DIALING)))
                           .order_by(CallbackRequest.place_at, CallbackRequest.id)).all()
    out = []
    for row in rows:
        if row.status == DIALING:
            answered = session.scalar(
                select(Call.answered_at).where(Call.sip_call_id.like(f"{CALL_PREFIX}{row.id}-%"))
                .order_by(Call.id.desc()).limit(1))
            if answered is not None:
                row.status, row.done_at = DONE, answered
                continue
            row.status = PENDING
            row.attempts = max(0, row.attempts - 1)
        out.append(_view(session, row))
    session.flush()
    return out


def pending_request(session: Session, request_id: int) -> CallbackView | None:
    """Request ``request_id`` when it still waits for a try."""
    request = session.get(CallbackRequest, request_id)
    if request is None or request.status != PENDING:
        return None
    return _view(session, request)


def start_attempt(session: Session, request_id: int, *, worker: str, sip_call_id: str,
                  at: datetime, local_day: date) -> OpenedCall:
    """One try: an outbound call with its own ticket (回拨请求), the request ``dialing``."""
    request = session.get(CallbackRequest, request_id)
    if request is None:
        raise LookupError(f"callback request {request_id}")
    request.status = DIALING
    request.attempts += 1
    request.last_attempt_at = at
    origin = session.scalar(select(Ticket.ticket_no).where(Ticket.call_id == request.call_id))
    call = Call(sip_call_id=sip_call_id, outbound=True, line_dialed="callback",
                caller_number=request.number, started_at=at, worker=worker,
                priority=request.priority, queue_code=request.queue_code, queued_at=at)
    session.add(call)
    session.flush()
    ticket = Ticket(ticket_no=next_ticket_no(session, local_day), kind=TicketKind.CALLBACK,
                    call_id=call.id, created_at=at, caller_number=request.number,
                    line="callback", queue_code=request.queue_code, priority=request.priority)
    session.add(ticket)
    session.add(CallEvent(call_id=call.id, seq=1, at=at, kind=CallEventKind.OFFERED,
                          data={"callback": request.id, "for_ticket": origin,
                                "attempt": request.attempts}))
    session.flush()
    return OpenedCall(call.id, ticket.id, ticket.ticket_no)


def finish_attempt(session: Session, request_id: int, *, answered: bool, at: datetime,
                   max_attempts: int) -> str:
    """The try is over: done, pending again (another try later) or failed; the new status."""
    request = session.get(CallbackRequest, request_id)
    if request is None:
        return FAILED
    if answered:
        request.status = DONE
        request.done_at = at
    elif request.attempts >= max_attempts:
        request.status = FAILED
        request.done_at = at
    else:
        request.status = PENDING
    origin = session.scalar(select(Ticket).where(Ticket.call_id == request.call_id))
    if origin is not None and request.status in (DONE, FAILED):
        note = ("已回拨接通" if answered else f"回拨 {request.attempts} 次未接通, 回拨失败")
        after = TicketStatus.CLOSED if answered and origin.status is TicketStatus.ACCEPTED \
            else origin.status
        session.add(TicketHistory(ticket_id=origin.id, at=at, from_status=origin.status,
                                  to_status=after, note=note))
        if after is not origin.status:
            origin.status = after
            origin.closed_at = at
    session.flush()
    return request.status


def _view(session: Session, request: CallbackRequest) -> CallbackView:
    origin = session.execute(select(Ticket.ticket_no, Call.language)
                             .join(Call, Call.id == Ticket.call_id)
                             .where(Ticket.call_id == request.call_id)).first()
    language = origin[1] if origin is not None and origin[1] is not None else Language.MANDARIN
    return CallbackView(request.id, request.number, request.queue_code, request.priority,
                        language, request.place_at, request.attempts,
                        origin[0] if origin is not None else "")
