"""The scheduler role's roster watch on a real ledger (SQLite and PostgreSQL): follow-ups
due become offers, overdue tickets are escalated once, shifts nobody signed in to raise one
alert; and the role itself moves between two nodes through the lease in the database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hotline.config import Settings, load_settings
from hotline.domain import (
    AgentEventKind,
    AgentState,
    AgentStatus,
    Category,
    Disposition,
    EndReason,
    Role,
    TicketStatus,
)
from hotline.jobs import LEASE, ROSTER_WATCH, Jobs, Runtime, roster_watch
from hotline.roster.duty import DutyBook
from hotline.roster.model import Assignment, Need, Slot, Solution
from hotline.store import agents as store_agents
from hotline.store import lease
from hotline.store import roster as store_roster
from hotline.store.calls import assign_lawyer, close_call, open_call
from hotline.store.engine import make_engine, make_session_factory
from hotline.store.roster import DutySpan
from hotline.store.session import session_scope
from hotline.store.tables import FollowUp, Ticket, TicketHistory
from hotline.store.tickets import WrapUp, submit_wrapup
from hotline.store.users import add_user, get_user

PASSWORD = "correct-horse-1"


def site_settings(folder: Path, roster: str = "") -> Settings:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "hotline.toml"
    config.write_text(f"[speech]\nenabled = false\n[roster]\nunstaffed_alert_minutes = 10\n"
                      f"{roster}", encoding="utf-8")
    return load_settings(config, environ={})


class Center:
    """The call centre as the watch sees it: who is at a desk, and the event stream."""

    def __init__(self) -> None:
        self.desk = SimpleNamespace(agents={})
        self.events: list[tuple[dict[str, Any], tuple[str, ...], bool]] = []

    def publish(self, event: dict[str, Any], to: Any, staff: bool) -> None:
        self.events.append((event, tuple(to), staff))


def call_ticket(factory: sessionmaker[Session], n: int, lawyer: str | None,
                at: datetime) -> tuple[int, str]:
    """A call that a lawyer answered (its ticket in 受理), as the coordinator writes it."""
    with session_scope(factory) as s:
        opened = open_call(s, sip_call_id=f"w{n}@trunk", line="12348", flow="main",
                           caller_number="13800000000", worker="w1", at=at,
                           local_day=at.date())
        if lawyer:
            assign_lawyer(s, opened.call_id, lawyer)
        close_call(s, opened.call_id, at=at + timedelta(minutes=5),
                   reason=EndReason.CALLER_HANGUP, ivr_vars={}, ivr_path=["main/menu"])
    return opened.ticket_id, opened.ticket_no


def wrap_up(factory: sessionmaker[Session], ticket_no: str, lawyer: str, wrap: WrapUp,
            at: datetime, settings: Settings) -> None:
    with session_scope(factory) as s:
        submit_wrapup(s, ticket_no, get_user(s, lawyer), wrap, at, settings.tz)


def slot(line: str, code: str, start: datetime, lawyers: int = 1) -> Slot:
    return Slot(start.date(), line, code, f"{code}班", start, start + timedelta(hours=8),
                Need(lawyers))


def publish(factory: sessionmaker[Session], shifts: list[tuple[Slot, tuple[str, ...]]]) -> None:
    """Store and publish shifts and their lawyers (month by month, as planning does)."""
    with session_scope(factory) as s:
        for month in sorted({f"{sl.date:%Y-%m}" for sl, _ in shifts}):
            mine = [(sl, who) for sl, who in shifts if f"{sl.date:%Y-%m}" == month]
            solution = Solution(tuple(Assignment(sl.id, w) for sl, who in mine for w in who),
                                "optimal", 0.0, 0.0, 0.0)
            store_roster.save_draft(s, month, [sl for sl, _ in mine], solution, need={},
                                    by=None)
            store_roster.publish(s, month, by=None)


def span(work_id: str, line: str, code: str, start: datetime) -> DutySpan:
    return DutySpan(work_id, 1, line, code, code, start, start + timedelta(hours=8), False)


async def test_follow_ups_overdue_tickets_and_unstaffed_shifts(
        factory: sessionmaker[Session], tmp_path: Path) -> None:
    settings = site_settings(tmp_path / "site", 'scheduler = "on"\n')
    tz = settings.tz
    now = datetime.now(UTC)
    with session_scope(factory) as s:
        for work_id in ("L001", "L002", "L003", "L004"):
            add_user(s, work_id, name=f"律师{work_id[-1]}", role=Role.LAWYER,
                     password=PASSWORD)
    days_ago = now - timedelta(days=4)
    answered = WrapUp(Disposition.ANSWERED, Category.LABOR, summary="欠薪", answer="可申请仲裁")
    # t1: answered and closed; two 回访 due (one for whoever took the call, one assigned),
    # one not due yet, one done already.
    t1, no1 = call_ticket(factory, 1, "L001", days_ago)
    wrap_up(factory, no1, "L001", answered, days_ago, settings)
    # t2: 约期答复 four days ago: due a day ago and still in 办理.
    t2, no2 = call_ticket(factory, 2, "L002", days_ago)
    wrap_up(factory, no2, "L002", WrapUp(Disposition.APPOINTMENT, Category.CONTRACT,
                                         summary="合同解除"), days_ago, settings)
    # t3: closed, with a follow-up date in the past: past due_at, yet nothing to escalate.
    t3, no3 = call_ticket(factory, 3, "L001", days_ago)
    wrap_up(factory, no3, "L001", WrapUp(Disposition.ANSWERED, Category.LABOR, summary="工伤",
                                         answer="先申请工伤认定",
                                         follow_up_on=days_ago.astimezone(tz).date()),
            days_ago, settings)
    # t4: 约期答复 today (due in three days); t5: no lawyer, never wrapped up.
    t4, no4 = call_ticket(factory, 4, "L001", now)
    wrap_up(factory, no4, "L001", WrapUp(Disposition.APPOINTMENT, Category.DEBT,
                                         summary="借条"), now, settings)
    t5, no5 = call_ticket(factory, 5, None, now - timedelta(hours=2))
    # t3's wrap-up wrote a "requested" 回访 for the morning of its follow-up day; more rows
    # as supervisors' tools would add them.
    with session_scope(factory) as s:
        l2 = get_user(s, "L002").id
        s.add_all([
            FollowUp(ticket_id=t1, reason="不满意回访", due_at=now - timedelta(hours=1)),
            FollowUp(ticket_id=t1, reason="补充材料", due_at=now - timedelta(minutes=30),
                     assigned_to=l2),
            FollowUp(ticket_id=t1, reason="下周回访", due_at=now + timedelta(days=1)),
            FollowUp(ticket_id=t1, reason="已回访", due_at=now - timedelta(days=1),
                     done_at=now - timedelta(hours=20)),
            FollowUp(ticket_id=t5, reason="留言回访", due_at=now - timedelta(minutes=10))])
        # Desks: L002 signed in and out again; L003 is signed in (and on a break).
        for work_id, kind, status in (
                ("L002", AgentEventKind.LOGIN, AgentStatus.AVAILABLE),
                ("L002", AgentEventKind.LOGOUT, AgentStatus.LOGGED_OUT),
                ("L003", AgentEventKind.LOGIN, AgentStatus.AVAILABLE),
                ("L003", AgentEventKind.STATUS, AgentStatus.ON_BREAK)):
            assert store_agents.record(s, work_id, now - timedelta(minutes=20), kind, status,
                                       AgentState.IDLE)

    # The published roster as every node's duty keeper reads it from the ledger.
    local = now.astimezone(tz).replace(second=0, microsecond=0)
    started = local - timedelta(minutes=15)
    publish(factory, [(slot("main", "A", started, 2), ("L001", "L002")),
                      (slot("dialect", "C", started), ("L003",)),  # L003 is signed in
                      (slot("sme", "S", local - timedelta(minutes=5)), ("L004",))])  # early
    with session_scope(factory) as s:
        book = DutyBook(store_roster.duty_spans(s, now - timedelta(days=2),
                                                now + timedelta(days=2)))
    assert len(book.spans) == 4
    center = Center()
    runtime = Runtime(settings, factory, center, SimpleNamespace(book=book))

    assert await runtime.watch() == {"follow_ups": 4, "overdue": 1, "unstaffed": 1}
    follow = [(e, to) for e, to, _ in center.events if e["type"] == "follow_up"]
    assert [(e["ticket_no"], e["reason"], e["work_id"], to) for e, to in follow] == [
        (no3, "requested", "L001", ("L001",)),
        (no1, "不满意回访", "L001", ("L001",)),
        (no1, "补充材料", "L002", ("L002",)),
        (no5, "留言回访", None, ())]  # nobody's: supervisors only
    assert follow[1][0]["due_at"] == (now - timedelta(hours=1)).isoformat()
    alerts = [(e, to) for e, to, _ in center.events if e["type"] == "alert"]
    assert alerts == [
        ({"type": "alert", "kind": "overdue", "ticket_no": no2, "work_id": "L002",
          "due_at": alerts[0][0]["due_at"], "text": f"工单 {no2} 已逾期未办结"}, ()),
        ({"type": "alert", "kind": "unstaffed", "line": "main", "code": "A",
          "start": started.isoformat(), "lawyers": ["L001", "L002"],
          "text": f"{started:%m月%d日 %H:%M} 开始的 A 班 [main] 已过 10 分钟仍无人签入 "
                  "(排班: L001, L002)"}, ())]
    assert datetime.fromisoformat(alerts[0][0]["due_at"]) == days_ago + timedelta(days=3)
    assert all(staff for _, _, staff in center.events)  # supervisors see every one

    with session_scope(factory) as s:
        offered = dict(s.execute(select(FollowUp.reason, FollowUp.offered_at)).all())
        tickets = {t.id: t for t in s.scalars(select(Ticket))}
        history = [(h.ticket_id, h.from_status, h.to_status, h.note) for h in s.scalars(
            select(TicketHistory).order_by(TicketHistory.id))]
        escalated = {tid: t.escalated_at for tid, t in tickets.items()}
        statuses = {tid: t.status for tid, t in tickets.items()}
    assert {r for r, at in offered.items() if at is not None} == {
        "requested", "不满意回访", "补充材料", "留言回访"}
    first_offer, escalation = offered["不满意回访"], escalated[t2]
    assert first_offer is not None and abs(first_offer - now) < timedelta(minutes=1)
    assert escalation is not None and abs(escalation - now) < timedelta(minutes=1)
    assert [escalated[t] for t in (t1, t3, t4, t5)] == [None] * 4
    assert statuses == {t1: TicketStatus.CLOSED, t2: TicketStatus.PROCESSING,
                        t3: TicketStatus.CLOSED, t4: TicketStatus.PROCESSING,
                        t5: TicketStatus.ACCEPTED}
    assert [h for h in history if h[0] == t2] == [
        (t2, TicketStatus.ACCEPTED, TicketStatus.PROCESSING, "话后整理: 约期答复"),
        (t2, TicketStatus.PROCESSING, TicketStatus.PROCESSING, "逾期未办结, 已上报班长")]
    assert [h[3] for h in history if h[0] == t3] == ["话后整理: 已解答"]

    # The next run (through the stored role job) finds nothing new to say.
    jobs = Jobs(settings, factory.kw["bind"], None, runtime=runtime, node="solo")
    jobs.start()
    try:
        assert jobs.holds_role and jobs.scheduler is not None
        job = jobs.scheduler.get_job(ROSTER_WATCH)
        assert job is not None and job.trigger.interval == timedelta(minutes=1)
        count = len(center.events)
        assert await roster_watch() == {"follow_ups": 0, "overdue": 0, "unstaffed": 0}
        assert len(center.events) == count
    finally:
        await stop(jobs)
    assert await roster_watch() == {}  # no runtime once the node stopped

    # Once L001 signs in, the shift is staffed (for a node that never alerted it either).
    with session_scope(factory) as s:
        store_agents.record(s, "L001", now, AgentEventKind.LOGIN, AgentStatus.AVAILABLE,
                            AgentState.IDLE)
    fresh = Runtime(settings, factory, center, SimpleNamespace(book=book))
    assert await fresh.watch() == {"follow_ups": 0, "overdue": 0, "unstaffed": 0}
    # A desk of this node counts too, whatever the ledger says (a duty phone has no account).
    center.desk.agents = {"L004": object()}
    late = DutyBook([span("L004", "sme", "S", local - timedelta(minutes=30))])
    assert await Runtime(settings, factory, center,
                         SimpleNamespace(book=late)).watch() == {
        "follow_ups": 0, "overdue": 0, "unstaffed": 0}
    assert len(center.events) == count


async def stop(jobs: Jobs) -> None:
    """Stop, and let the loop run the schedulers' shutdown (queued on the loop)."""
    schedulers = [s for s in (jobs.scheduler, jobs.local) if s is not None]
    jobs.stop()
    assert jobs.scheduler is None
    for _ in range(100):
        if not any(s.running for s in schedulers):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("scheduler still running")


def holder(factory: sessionmaker[Session]) -> str | None:
    with session_scope(factory) as s:
        return lease.holder_of(s, LEASE, datetime.now(UTC))


async def test_the_role_moves_to_the_other_node_when_its_holder_stops(
        upgraded_url: str, tmp_path: Path) -> None:
    settings = site_settings(tmp_path / "site", 'scheduler = "auto"\nlease_seconds = 5\n')
    engine = make_engine(upgraded_url)
    factory = make_session_factory(engine)
    a = Jobs(settings, engine, None, node="node-a")
    b = Jobs(settings, engine, None, node="node-b")
    changes: list[bool] = []
    b.on_role = changes.append
    try:
        a.start()
        b.start()
        assert (a.holds_role, b.holds_role) == (True, False)
        assert holder(factory) == "node-a"
        assert await b.renew() is False
        assert await a.renew() is True  # renewing keeps it
        assert (a.holds_role, b.holds_role) == (True, False)
        assert holder(factory) == "node-a" and changes == []

        await stop(a)  # a clean stop gives the lease up at once
        assert holder(factory) is None
        assert await b.renew() is True
        assert (a.holds_role, b.holds_role, changes) == (False, True, [True])
        assert holder(factory) == "node-b"
        assert b.scheduler is not None and b.scheduler.get_job(ROSTER_WATCH) is not None

        # node-a comes back: the role stays where it is.
        a = Jobs(settings, engine, None, node="node-a")
        a.start()
        assert not a.holds_role and await a.renew() is False
        assert holder(factory) == "node-b"
    finally:
        for jobs in (a, b):
            if jobs.local.running:
                await stop(jobs)
        engine.dispose()


async def test_a_dissatisfied_rating_is_followed_up_by_supervisors(
        factory: sessionmaker[Session], tmp_path: Path) -> None:
    settings = site_settings(tmp_path / "site", 'scheduler = "on"\n')
    with session_scope(factory) as s:
        add_user(s, "L001", name="律师1", role=Role.LAWYER, password=PASSWORD)
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    with session_scope(factory) as s:
        opened = open_call(s, sip_call_id="sad@trunk", line="12348", flow="main",
                           caller_number="13800000000", worker="w1", at=two_days_ago,
                           local_day=two_days_ago.date())
        assign_lawyer(s, opened.call_id, "L001")
        close_call(s, opened.call_id, at=two_days_ago + timedelta(minutes=5),
                   reason=EndReason.CALLER_HANGUP, ivr_vars={"satisfaction": 2},
                   ivr_path=["main/survey"])
        happy = open_call(s, sip_call_id="glad@trunk", line="12348", flow="main",
                          caller_number="13800000001", worker="w1", at=two_days_ago,
                          local_day=two_days_ago.date())
        close_call(s, happy.call_id, at=two_days_ago + timedelta(minutes=5),
                   reason=EndReason.CALLER_HANGUP, ivr_vars={"satisfaction": 4},
                   ivr_path=["main/survey"])
        rows = s.execute(select(FollowUp.ticket_id, FollowUp.reason, FollowUp.due_at)).all()
    assert [(t, r) for t, r, _ in rows] == [(opened.ticket_id, "dissatisfied")]
    assert rows[0][2] == two_days_ago + timedelta(minutes=5, days=1)
    center = Center()
    runtime = Runtime(settings, factory, center, None)
    assert (await runtime.watch())["follow_ups"] == 1
    [(event, to, staff)] = [e for e in center.events if e[0]["type"] == "follow_up"]
    # not offered to the lawyer who was rated: supervisors call the caller back
    assert (event["ticket_no"], event["work_id"], to, staff) == (opened.ticket_no, None, (),
                                                                 True)
