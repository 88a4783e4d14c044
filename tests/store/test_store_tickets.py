"""The wrap-up on both backends: what closes a ticket, what keeps it open, what is refused."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from hotline.domain import Category, Disposition, Role, TicketStatus
from hotline.errors import ConflictError, DomainError, NotFoundError
from hotline.store import calls as ledger_calls
from hotline.store import users as store_users
from hotline.store.tables import Ticket, TicketHistory
from hotline.store.tickets import WrapUp, submit_wrapup

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def _ticket(factory):
    with factory.begin() as s:
        lawyer = store_users.add_user(s, "8001", name="律师", role=Role.LAWYER,
                                      password="correct-horse-1")
        store_users.add_user(s, "9001", name="班长", role=Role.SUPERVISOR,
                             password="correct-horse-1")
        opened = ledger_calls.open_call(s, sip_call_id="x", line="12348", caller_number="139",
                                        flow="main", worker="w1", at=NOW,
                                        local_day=date(2026, 12, 1))
        ledger_calls.assign_lawyer(s, opened.call_id, "8001")
        return opened.ticket_no, lawyer


def test_appointment_stays_in_processing_with_a_due_date(factory):
    ticket_no, lawyer = _ticket(factory)
    wrap = WrapUp(Disposition.APPOINTMENT, Category.INHERITANCE, summary="遗嘱效力")
    with factory.begin() as s:
        out = submit_wrapup(s, ticket_no, lawyer, wrap, NOW)
    assert out["status"] == "processing"
    with factory() as s:
        ticket = s.scalar(select(Ticket))
        assert ticket.due_at == NOW + timedelta(days=3) and ticket.closed_at is None
        [move] = s.scalars(select(TicketHistory)).all()
        assert (move.from_status, move.to_status) == (TicketStatus.ACCEPTED,
                                                      TicketStatus.PROCESSING)
    # the reply given later closes it
    done = WrapUp(Disposition.ANSWERED, Category.INHERITANCE, summary="遗嘱效力",
                  answer="自书遗嘱须全文亲笔")
    with factory.begin() as s:
        assert submit_wrapup(s, ticket_no, lawyer, done, NOW)["status"] == "closed"
    with factory.begin() as s, pytest.raises(ConflictError):
        submit_wrapup(s, ticket_no, lawyer, done, NOW)


def test_refusals_change_nothing(factory):
    ticket_no, lawyer = _ticket(factory)
    with factory.begin() as s, pytest.raises(DomainError) as err:
        submit_wrapup(s, ticket_no, lawyer, WrapUp(Disposition.REFERRED, Category.LABOR,
                                                   summary="s", answer="a"), NOW)
    assert "转办须填写转办单位" in str(err.value)
    with factory.begin() as s:
        other = store_users.add_user(s, "8002", name="别人", role=Role.LAWYER,
                                     password="correct-horse-1")
    with factory.begin() as s, pytest.raises(NotFoundError):
        submit_wrapup(s, ticket_no, other, WrapUp(Disposition.DROPPED), NOW)
    with factory.begin() as s, pytest.raises(NotFoundError):
        submit_wrapup(s, "12348-20990101-000001", lawyer, WrapUp(Disposition.DROPPED), NOW)
    with factory() as s:
        assert s.scalar(select(Ticket)).status is TicketStatus.ACCEPTED
        assert not s.scalars(select(TicketHistory)).all()
    # a supervisor may close anyone's ticket
    with factory.begin() as s:
        boss = store_users.get_user(s, "9001")
        assert submit_wrapup(s, ticket_no, boss, WrapUp(Disposition.DROPPED), NOW)[
            "status"] == "closed"
