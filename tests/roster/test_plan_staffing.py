"""Planning with staffing on a real ledger (SQLite and PostgreSQL): two weeks of calls, busy
on Monday mornings, raise the head-count of the shifts covering that hour above the
template's, and the solver staffs them with that many lawyers."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hotline.config import Settings, load_settings
from hotline.domain import CallEventKind, EndReason, Role
from hotline.roster import rules
from hotline.roster.files import load_templates
from hotline.roster.planning import month_problem, plan_month, templates_path
from hotline.roster.staffing import history, table
from hotline.store.calls import append_events, assign_lawyer, close_call, open_call, update_call
from hotline.store.session import session_scope
from hotline.store.tables import RosterPlan
from hotline.store.users import add_user

LAWYERS = ("L001", "L002", "L003", "L004", "L005", "L006")
TEMPLATES = """\
lines:
  main: {name: 主线}
shifts:
  - {code: A, name: 白班, line: main, start: "08:00", end: "16:00", need: {lawyers: 1}}
  - {code: B, name: 晚班, line: main, start: "16:00", end: "24:00", need: {lawyers: 1}}
"""
MONDAYS = ("2026-12-07", "2026-12-14", "2026-12-21", "2026-12-28")


def site_settings(folder: Path) -> Settings:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "shifts.yaml").write_text(TEMPLATES, encoding="utf-8")
    config = folder / "hotline.toml"
    config.write_text('[roster]\ntemplates = "shifts.yaml"\nsolver_seconds = 2\n',
                      encoding="utf-8")
    return load_settings(config, environ={})


def answered_call(factory: sessionmaker[Session], n: int, queued: datetime, *, talk: float,
                  flow: str = "main") -> None:
    """A caller queued, answered by a lawyer 5 s later, ``talk`` seconds with them."""
    start = queued - timedelta(seconds=30)
    answer = queued + timedelta(seconds=5)
    end = answer + timedelta(seconds=talk)
    with session_scope(factory) as s:
        cid = open_call(s, sip_call_id=f"c{n}@trunk", line="12348", flow=flow,
                        caller_number="13800000000", worker="w1", at=start,
                        local_day=start.date()).call_id
        update_call(s, cid, answered_at=start + timedelta(seconds=1), queued_at=queued,
                    queue_code="general")
        append_events(s, cid, [(queued, CallEventKind.ENQUEUED, {"target": "general"})])
        assign_lawyer(s, cid, "L001")
        update_call(s, cid, agent_answered_at=answer)
        append_events(s, cid, [
            (answer, CallEventKind.AGENT_ANSWERED, {"leg": "lawyer1", "to": "sip:1@x"}),
            (end, CallEventKind.LEG_ENDED, {"leg": "lawyer1", "role": "lawyer",
                                            "reason": "hangup", "status": 200})])
        close_call(s, cid, at=end, reason=EndReason.LAWYER_HANGUP, ivr_vars={},
                   ivr_path=["main/general_queue"])


def test_a_busy_hour_raises_its_shifts_and_the_solver_staffs_them(
        factory: sessionmaker[Session], tmp_path: Path) -> None:
    settings = site_settings(tmp_path / "site")
    tz = settings.tz
    with session_scope(factory) as s:
        for work_id in LAWYERS:
            add_user(s, work_id, name=f"律师{work_id[-1]}", role=Role.LAWYER,
                     password="correct-horse-1", skills=[("general", 3)])
    # Two weeks, Monday 2 – Sunday 15 November: 8 callers every Monday 10:00–11:00 (10 min
    # each), one on Tuesday afternoons, and the SME line's (another flow) Monday evenings.
    n = 0
    for week in range(2):
        monday = datetime(2026, 11, 2, 10, tzinfo=tz) + timedelta(weeks=week)
        for i in range(8):
            n += 1
            answered_call(factory, n, monday + timedelta(minutes=7 * i), talk=600)
        n += 1
        answered_call(factory, n, monday + timedelta(days=1, hours=5), talk=300)
        for i in range(8):
            n += 1
            answered_call(factory, n, monday + timedelta(hours=9, minutes=7 * i), talk=600,
                          flow="sme")

    with session_scope(factory) as s:
        hist = history(s, datetime(2026, 11, 2, tzinfo=tz), datetime(2026, 11, 16, tzinfo=tz),
                       tz, settings.roster.staffing_line)
    assert (hist.offered, hist.answered, hist.weeks) == (18, 18, 2)
    assert hist.hours[(0, 10)].arrivals == 8.0 and hist.handle_time(0, 10) == 600
    need = {f"{r.weekday}-{r.hour}": r.need for r in table(hist, 0.8, 15, 0.95)}
    # Erlang C (nobody abandoned), 8 calls an hour of 600 s: A = 1.33 E; within 15 s two
    # lawyers answer 47.5 %, three 82.6 % (the 80 % target).
    assert need["0-10"] == 3
    assert {k: v for k, v in need.items() if v != 1} == {"0-10": 3}
    day_shift = load_templates(templates_path(settings)).shift("A", "main")
    assert day_shift is not None and day_shift.needs["workday"].lawyers == 1

    with session_scope(factory) as s:
        result = plan_month(s, settings, "2026-12", need=need, by=None)
    heads = {slot.id: slot.need.lawyers for slot in result.slots}
    raised = {sid for sid, n in heads.items() if n > 1}
    assert raised == {f"{d}/main/A" for d in MONDAYS}
    assert {heads[sid] for sid in raised} == {3} and len(heads) == 62
    staffed = Counter(a.slot_id for a in result.solution.assignments)
    assert staffed == Counter(heads)  # every shift exactly as many as it needs
    assert all(len({a.work_id for a in result.solution.assignments if a.slot_id == sid}) == 3
               for sid in raised)

    # What the ledger keeps: the raised head-counts, the need map, a roster without a
    # broken rule.
    with session_scope(factory) as s:
        problem, roster = month_problem(s, settings, "2026-12")
        plan = s.scalar(select(RosterPlan).where(RosterPlan.month == "2026-12"))
        assert plan is not None and plan.need == need and plan.status == "draft"
    assert {s.id: s.need.lawyers for s in roster.slots} == heads
    assert Counter(a.slot_id for a in roster.assignments) == staffed
    assert rules.violations(problem, roster.assignments) == []
