from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from hotline.callers import CallerFacts
from hotline.domain import GreenReason, Role
from hotline.store.callers import lookup_caller_facts
from hotline.store.session import session_scope
from hotline.store.tables import KnownCaller, Ticket
from hotline.store.users import add_user

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NUMBER = "13912345678"


def _lawyer(s: Session, work_id: str) -> int:
    return add_user(s, work_id, name="律师" + work_id, role=Role.LAWYER,
                    password="long enough pw").id


def _ticket(s: Session, no: int, created_at: datetime, lawyer_id: int | None,
            number: str = NUMBER, region: str | None = "湖北省武汉市") -> None:
    s.add(Ticket(ticket_no=f"12348-20261125-{no:06d}", created_at=created_at,
                 caller_number=number, caller_region=region, lawyer_id=lawyer_id))


@pytest.fixture
def ledger(factory: sessionmaker[Session]) -> sessionmaker[Session]:
    with session_scope(factory) as s:
        first = _lawyer(s, "L1")
        second = _lawyer(s, "L2")
        _ticket(s, 1, NOW - timedelta(days=40), first)
        _ticket(s, 2, NOW - timedelta(days=5), second)
        _ticket(s, 3, NOW - timedelta(days=10), first)
        _ticket(s, 4, NOW + timedelta(hours=1), first)  # after "now": not history yet
        _ticket(s, 5, NOW - timedelta(days=1), first, number="13700000000")
        s.add(KnownCaller(number="13600000000", green_channel=True,
                          green_reasons=["elderly", "retired-reason"], note="独居老人"))
        s.add(KnownCaller(number="13700000000", green_channel=False))
    return factory


def test_repeat_caller_within_window(ledger: sessionmaker[Session]) -> None:
    with session_scope(ledger) as s:
        facts = lookup_caller_facts(s, NUMBER, NOW, 30)
    assert facts == CallerFacts(
        number=NUMBER, region="湖北省武汉市", known=False, repeat=True,
        last_ticket_no="12348-20261125-000002", last_lawyer="L2",
        green_channel=False, green_reasons=())
    assert facts.as_facts()["caller.last_lawyer"] == "L2"


def test_window_boundary(ledger: sessionmaker[Session]) -> None:
    with session_scope(ledger) as s:
        exactly = lookup_caller_facts(s, NUMBER, NOW, 5)  # ticket 2 is exactly 5 days old
        shorter = lookup_caller_facts(s, NUMBER, NOW - timedelta(seconds=1), 4)
    assert exactly.repeat is True and exactly.last_lawyer == "L2"
    assert shorter.repeat is False


def test_older_than_window_is_not_a_repeat(ledger: sessionmaker[Session]) -> None:
    with session_scope(ledger) as s:
        facts = lookup_caller_facts(s, NUMBER, NOW - timedelta(days=20), 10)
    # Only ticket 1 (20 days before that "now") exists before it, outside the 10-day window.
    assert facts == CallerFacts(number=NUMBER)


def test_first_time_caller(ledger: sessionmaker[Session]) -> None:
    with session_scope(ledger) as s:
        facts = lookup_caller_facts(s, "01012345678", NOW, 30)
    assert facts == CallerFacts(number="01012345678")
    assert facts.repeat is False and facts.known is False and facts.last_lawyer is None


def test_green_channel_known_caller(ledger: sessionmaker[Session]) -> None:
    with session_scope(ledger) as s:
        facts = lookup_caller_facts(s, " 13600000000 ", NOW, 30)
    assert facts.number == "13600000000"
    assert facts.known is True
    assert facts.green_channel is True
    assert facts.green_reasons == (GreenReason.ELDERLY,)  # unknown reasons are dropped
    assert facts.repeat is False


def test_known_caller_without_green_channel(ledger: sessionmaker[Session]) -> None:
    with session_scope(ledger) as s:
        facts = lookup_caller_facts(s, "13700000000", NOW, 30)
    assert (facts.known, facts.green_channel, facts.repeat, facts.last_lawyer) == (
        True, False, True, "L1")


def test_ticket_without_lawyer_still_counts(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as s:
        _ticket(s, 9, NOW - timedelta(hours=2), None, region=None)
    with session_scope(factory) as s:
        facts = lookup_caller_facts(s, NUMBER, NOW, 30)
    assert facts.repeat is True
    assert facts.last_lawyer is None
    assert facts.region == ""


def test_withheld_number_knows_nothing(ledger: sessionmaker[Session]) -> None:
    with session_scope(ledger) as s:
        assert lookup_caller_facts(s, "", NOW, 30) == CallerFacts()
