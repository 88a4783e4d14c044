"""The call ledger on SQLite and PostgreSQL."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, text

from hotline.domain import CallEventKind, EndReason
from hotline.store.calls import (
    add_recording,
    append_events,
    close_call,
    close_recording,
    next_ticket_no,
    open_call,
    open_calls,
    open_recordings,
)
from hotline.store.engine import make_engine, make_session_factory
from hotline.store.migrate import upgrade
from hotline.store.session import session_scope
from hotline.store.tables import Call, CallEvent, Recording, Ticket

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def factory(db_url):
    upgrade(db_url)
    engine = make_engine(db_url)
    yield make_session_factory(engine)
    engine.dispose()


def _open(factory, sip="a@x", at=T0):
    with session_scope(factory) as s:
        return open_call(s, sip_call_id=sip, line="12348", caller_number="13800000000",
                         flow="main", worker="w1", at=at, local_day=date(2026, 12, 1),
                         data={"from": "sip:13800000000@x"})


def test_open_call_writes_call_ticket_and_first_event(factory):
    opened = _open(factory)
    assert opened.ticket_no == "12348-20261201-000001"
    with session_scope(factory) as s:
        call = s.get(Call, opened.call_id)
        assert (call.line_dialed, call.worker, call.started_at) == ("12348", "w1", T0)
        ticket = s.scalar(select(Ticket).where(Ticket.call_id == opened.call_id))
        assert ticket.ticket_no == opened.ticket_no and ticket.status.value == "accepted"
        events = s.scalars(select(CallEvent).where(CallEvent.call_id == opened.call_id)).all()
        assert [(e.seq, e.kind) for e in events] == [(1, CallEventKind.OFFERED)]


def test_ticket_numbers_are_gap_free_per_day(factory):
    numbers = [_open(factory, sip=f"c{i}@x").ticket_no for i in range(3)]
    assert numbers == [f"12348-20261201-00000{i}" for i in (1, 2, 3)]
    with session_scope(factory) as s:
        assert next_ticket_no(s, date(2026, 12, 2)) == "12348-20261202-000001"


def test_concurrent_writers_never_share_a_ticket_number(factory):
    def one(i):
        return _open(factory, sip=f"p{i}@x").ticket_no

    with ThreadPoolExecutor(4) as pool:
        numbers = list(pool.map(one, range(12)))
    assert sorted(numbers) == [f"12348-20261201-{i:06d}" for i in range(1, 13)]


def test_events_append_in_order_and_close_copies_ivr_fields(factory):
    opened = _open(factory)
    with session_scope(factory) as s:
        append_events(s, opened.call_id, [
            (T0 + timedelta(seconds=1), CallEventKind.ANSWERED, {}),
            (T0 + timedelta(seconds=2), CallEventKind.IVR_NODE, {"node": "notice"}),
        ])
        append_events(s, opened.call_id, [(T0 + timedelta(seconds=9), CallEventKind.DIGITS,
                                           {"value": "1"})])
    with session_scope(factory) as s:
        close_call(s, opened.call_id, at=T0 + timedelta(seconds=30),
                   reason=EndReason.CALLER_HANGUP,
                   ivr_vars={"category": "labor", "priority": "green", "language": "mandarin",
                             "tags": ["欠薪"], "green_reason": "migrant_wages",
                             "satisfaction": 5, "callback_number": "13900000000",
                             "bogus": "x"},
                   ivr_path=["main/notice", "main/category"])
        # a second close changes nothing
        close_call(s, opened.call_id, at=T0 + timedelta(seconds=99), reason=EndReason.FAILED,
                   ivr_vars={}, ivr_path=[])
    with session_scope(factory) as s:
        kinds = s.scalars(select(CallEvent.kind).where(CallEvent.call_id == opened.call_id)
                          .order_by(CallEvent.seq)).all()
        assert kinds == [CallEventKind.OFFERED, CallEventKind.ANSWERED, CallEventKind.IVR_NODE,
                         CallEventKind.DIGITS, CallEventKind.ENDED]
        call = s.get(Call, opened.call_id)
        assert call.end_reason is EndReason.CALLER_HANGUP
        assert call.ended_at == T0 + timedelta(seconds=30)
        assert call.priority.value == "green"
        t = s.scalar(select(Ticket).where(Ticket.call_id == opened.call_id))
        assert (t.category.value, t.language.value, t.tags, t.green_reasons, t.satisfaction,
                t.callback_number, t.ivr_path) == (
            "labor", "mandarin", ["欠薪"], ["migrant_wages"], 5, "13900000000",
            ["main/notice", "main/category"])
    with session_scope(factory) as s:
        assert open_calls(s) == []


def test_recording_row_from_start_to_close_and_crash_listing(factory):
    opened = _open(factory)
    with session_scope(factory) as s:
        rec_id = add_recording(s, opened.call_id, "/r/a.wav", T0)
    with session_scope(factory) as s:
        assert open_recordings(s) == [(rec_id, "/r/a.wav")]
        assert [c.call_id for c in open_calls(s)] == [opened.call_id]
        close_recording(s, rec_id, sha256="ab" * 32, seconds=29.5, size=472044,
                        closed_at=T0 + timedelta(seconds=30), flagged=None)
    with session_scope(factory) as s:
        rec = s.get(Recording, rec_id)
        assert (rec.sha256, rec.duration_s, rec.size_bytes) == ("ab" * 32, 29.5, 472044)
        assert s.scalar(select(Ticket.recording_id).where(Ticket.call_id == opened.call_id)) \
            == rec_id
        assert open_recordings(s) == []


def test_events_stay_append_only(factory):
    opened = _open(factory)
    with pytest.raises(Exception), session_scope(factory) as s:  # noqa: B017 - driver-specific
        s.execute(text("UPDATE call_events SET kind = 'ended' WHERE call_id = :c"),
                  {"c": opened.call_id})
