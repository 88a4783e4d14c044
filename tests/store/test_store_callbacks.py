"""Callback requests in the ledger (SQLite and PostgreSQL): asked, tried, resolved after a
restart, finished.
"""

from datetime import UTC, datetime

from sqlalchemy import select

from hotline.domain import Priority, TicketStatus
from hotline.store import callbacks as ledger_callbacks
from hotline.store.session import session_scope
from hotline.store.tables import Call, CallbackRequest, Ticket, TicketHistory

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_a_restart_during_a_try_is_resolved_from_the_ledger(factory):
    now = NOW
    with session_scope(factory) as s:
        ids = []
        for n, number in enumerate(("13900000001", "13900000002")):
            s.add(Call(sip_call_id=f"asked{n}", line_dialed="12348", caller_number=number,
                       started_at=now))
            s.flush()
            call_id = s.scalar(select(Call.id).where(Call.sip_call_id == f"asked{n}"))
            s.add(Ticket(ticket_no=f"12348-20261130-99999{n}", call_id=call_id,
                         created_at=now, caller_number=number))
            s.flush()
            ids.append(ledger_callbacks.request_callback(
                s, call_id, number=number, queue="general", priority=Priority.NORMAL,
                place_at=now, at=now).id)
        for request_id in ids:  # both were being dialled when the node stopped
            opened = ledger_callbacks.start_attempt(
                s, request_id, worker="w1", sip_call_id=f"callback-{request_id}-abc",
                at=now, local_day=now.date())
            if request_id == ids[0]:  # the first caller had answered
                s.get(Call, opened.call_id).answered_at = now
    with session_scope(factory) as s:
        waiting = ledger_callbacks.open_requests(s)
    assert [(v.id, v.attempts) for v in waiting] == [(ids[1], 0)]  # the try is not counted
    with factory() as s:
        rows = [(r.status, r.attempts) for r in s.scalars(
            select(CallbackRequest).order_by(CallbackRequest.id))]
    assert rows == [("done", 1), ("pending", 0)]


def test_tries_end_done_or_failed_and_the_asking_ticket_says_so(factory):
    with session_scope(factory) as s:
        s.add(Call(sip_call_id="asked", line_dialed="12348", caller_number="13900000009",
                   started_at=NOW))
        s.flush()
        call_id = s.scalar(select(Call.id))
        s.add(Ticket(ticket_no="12348-20261130-999990", call_id=call_id, created_at=NOW,
                     caller_number="13900000009"))
        s.flush()
        request = ledger_callbacks.request_callback(
            s, call_id, number="13900000009", queue="labor", priority=Priority.GREEN,
            place_at=NOW, at=NOW)
        assert (request.queue, request.priority, request.ticket_no) == (
            "labor", Priority.GREEN, "12348-20261130-999990")
        for attempt in (1, 2):
            opened = ledger_callbacks.start_attempt(
                s, request.id, worker="w1", sip_call_id=f"callback-{request.id}-{attempt}",
                at=NOW, local_day=NOW.date())
            assert opened.ticket_no.startswith("12348-20261201-")
            status = ledger_callbacks.finish_attempt(s, request.id, answered=False, at=NOW,
                                                     max_attempts=2)
            assert status == ("pending" if attempt == 1 else "failed")
        assert ledger_callbacks.pending_request(s, request.id) is None
        origin = s.scalar(select(Ticket).where(Ticket.call_id == call_id))
        assert origin.status is TicketStatus.ACCEPTED  # failed: still to be handled
        notes = [h.note for h in s.scalars(select(TicketHistory).order_by(TicketHistory.id))]
        assert notes[0] == "来电人选择回拨, 已排队等待" and "回拨失败" in notes[-1]
