"""Shift edges with a controllable clock: the duty book, the desk's graceful logout, the
scheduler lease (SQLite and PostgreSQL)."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hotline.acd.desk import Desk
from hotline.config import QueueSettings
from hotline.domain import AgentState, AgentStatus
from hotline.roster.duty import DutyBook
from hotline.store import lease
from hotline.store.roster import DutySpan
from hotline.store.session import session_scope

SH = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 12, 3, tzinfo=SH)


def at(hour: int, minute: int = 0, second: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute, second=second)


def span(work_id: str, start: datetime, end: datetime, code: str = "D") -> DutySpan:
    return DutySpan(work_id, 1, "main", code, code, start, end, False)


BOOK = DutyBook([span("night", at(0), at(8), "N"), span("day", at(8), at(16)),
                 span("day2", at(8), at(16)), span("eve", at(16), at(23, 59, 59), "E")])


def test_a_lawyer_becomes_eligible_at_08_00_not_before():
    assert BOOK.on_duty(at(7, 59, 59)) == {"night"}
    assert BOOK.on_duty(at(8)) == {"day", "day2"}
    edge = BOOK.edge(at(7, 59, 59), at(8))
    assert edge.starting == {"day", "day2"} and edge.ending == {"night"}
    assert BOOK.next_edge(at(7)) == at(8)
    assert BOOK.next_edge(at(8)) == at(16)


def test_the_roster_in_force_only_while_a_shift_runs_unless_enforced():
    gap = DutyBook([span("day", at(8), at(16))])
    assert gap.on_duty(at(7)) is None  # auto: no shift now, anyone logged in takes calls
    assert DutyBook([span("day", at(8), at(16))], "on").on_duty(at(7)) == frozenset()
    assert DutyBook([span("day", at(8), at(16))], "off").on_duty(at(9)) is None


def test_unstaffed_shift_is_reported_after_the_grace_only():
    after = timedelta(minutes=10)
    assert BOOK.unstaffed(at(0, 9), [], after) == []
    assert BOOK.unstaffed(at(0, 10), [], after) == [("main", "N", at(0), ("night",))]
    assert BOOK.unstaffed(at(8, 9), [], after) == []  # the night is over, the day too new
    found = BOOK.unstaffed(at(8, 10), ["night"], after)
    assert found == [("main", "D", at(8), ("day", "day2"))]
    assert BOOK.unstaffed(at(8, 10), ["day2"], after) == []


def _desk() -> Desk:
    return Desk({"general": QueueSettings(name="综合", skills=("general",))})


def test_desk_offers_only_to_lawyers_on_duty_and_logs_out_after_wrap_up():
    desk = _desk()
    logged_out: list[str] = []
    desk.on_logout = lambda work_id, why: logged_out.append(work_id)
    now = at(7, 50).astimezone(UTC)
    desk.set_duty(frozenset({"night"}), now)
    for w in ("night", "day"):
        desk.login(w, f"sip:{w}@127.0.0.1", now, skills={"general": 3})
    assert desk.agents["night"].takes_calls and not desk.agents["day"].takes_calls
    desk.enqueue("c1", "general", now)
    [offer] = desk.route(now)
    assert offer.agents == ("night",)  # "day" logged in early: no offer before 08:00
    desk.ringing("night", now)
    desk.answered("night", "c1", now)
    edge = at(8).astimezone(UTC)
    desk.set_duty(frozenset({"day"}), edge, ended=frozenset({"night"}))
    assert desk.agents["day"].takes_calls
    # The night lawyer finishes the call and the wrap-up before being signed out.
    assert desk.agents["night"].state is AgentState.IN_CALL and not logged_out
    desk.hung_up("night", 60, edge)
    assert desk.agents["night"].state is AgentState.WRAP_UP and not logged_out
    desk.wrap_done("night", edge + timedelta(seconds=30))
    assert "night" not in desk.agents and logged_out == ["night"]
    # An idle lawyer whose shift ends is signed out at once.
    desk.set_duty(frozenset(), at(16).astimezone(UTC), ended=frozenset({"day"}))
    assert logged_out == ["night", "day"] and not desk.agents


def test_a_lawyer_logging_in_mid_shift_is_on_duty_at_once():
    desk = _desk()
    desk.set_duty(frozenset({"day"}), at(9))
    agent = desk.login("day", "sip:day@127.0.0.1", at(9), skills={"general": 3})
    assert agent.on_duty and agent.status is AgentStatus.AVAILABLE
    assert not desk.login("extra", "sip:x@127.0.0.1", at(9)).on_duty


def test_only_one_node_holds_the_scheduler_lease(factory):
    now = datetime.now(UTC)
    with session_scope(factory) as s:
        assert lease.acquire(s, "scheduler", "node-a", now, 30)
    with session_scope(factory) as s:
        assert not lease.acquire(s, "scheduler", "node-b", now + timedelta(seconds=10), 30)
        assert lease.acquire(s, "scheduler", "node-a", now + timedelta(seconds=10), 30)
        assert lease.holder_of(s, "scheduler", now + timedelta(seconds=20)) == "node-a"
    # node-a dies (stops renewing): node-b takes over once the lease has expired
    with session_scope(factory) as s:
        assert not lease.acquire(s, "scheduler", "node-b", now + timedelta(seconds=39), 30)
        assert lease.acquire(s, "scheduler", "node-b", now + timedelta(seconds=41), 30)
    with session_scope(factory) as s:
        lease.release(s, "scheduler", "node-a")  # not the holder: nothing happens
        assert lease.holder_of(s, "scheduler", now + timedelta(seconds=42)) == "node-b"
        lease.release(s, "scheduler", "node-b")
        assert lease.holder_of(s, "scheduler", now + timedelta(seconds=42)) is None
