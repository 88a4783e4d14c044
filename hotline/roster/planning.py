"""Planning a month: templates + calendar + lawyers (+ staffing) → solver → ledger.

The one place that wires the pure parts (:mod:`.model`, :mod:`.solver`, :mod:`.rules`,
:mod:`.staffing`) to the ledger (:mod:`hotline.store.roster`); the CLI, the API and the
console call it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy.orm import Session

from hotline.config import Settings
from hotline.errors import RosterError
from hotline.ivr.calendar import CalendarDataError, HolidayCalendar
from hotline.roster import rules as roster_rules
from hotline.roster.files import load_templates
from hotline.roster.model import (
    Assignment,
    Problem,
    Rules,
    Slot,
    Solution,
    Templates,
    expand,
    month_days,
)
from hotline.roster.solver import solve
from hotline.store import roster as store


def templates_path(settings: Settings) -> Path:
    """The shift templates file."""
    p = settings.roster.templates
    return p if p.is_absolute() else (settings.base_dir / p).resolve()


def holiday_calendar(settings: Settings) -> HolidayCalendar | None:
    """The configured holiday calendar, or None when its file is missing."""
    path = settings.path("flows") / "calendars" / f"{settings.roster.calendar}.yaml"
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return HolidayCalendar.from_data(data, settings.roster.calendar)
    except (OSError, yaml.YAMLError, CalendarDataError) as exc:
        raise RosterError("roster.error", detail=f"节假日日历 {path} 有误: {exc}") from None


def rules_of(settings: Settings) -> Rules:
    """Hard rules' defaults from the configuration."""
    r = settings.roster
    return Rules(min_rest_hours=r.min_rest_hours, max_consecutive_nights=r.max_consecutive_nights,
                 max_shifts=r.max_shifts)


def month_slots(settings: Settings, month: str, templates: Templates | None = None) -> list[Slot]:
    """The month's shifts from the templates and the holiday calendar."""
    first, _ = store.month_span(month)
    templates = templates or load_templates(templates_path(settings))
    return expand(templates, month_days(first.year, first.month), settings.tz,
                  holiday_calendar(settings))


def apply_need(slots: Sequence[Slot], need: Mapping[str, int], line: str) -> list[Slot]:
    """Raise head-counts of ``line``'s slots to the hourly staffing need ("wd-h" → n)."""
    if not need:
        return list(slots)
    from hotline.roster.staffing import raise_needs

    parsed = {(int(k.split("-")[0]), int(k.split("-")[1])): v for k, v in need.items()}
    return raise_needs(slots, parsed, line=line)


@dataclass(frozen=True)
class PlanResult:
    """What a plan did."""

    month: str
    slots: tuple[Slot, ...]
    solution: Solution
    plan_id: int | None
    published: bool
    removed: tuple[Assignment, ...] = ()
    added: tuple[Assignment, ...] = ()


def _history(session: Session, settings: Settings, first: date) -> tuple[tuple[Slot, str], ...]:
    before = store.load_roster(session, first - timedelta(days=7), first, settings.tz)
    slots = {s.id: s for s in before.slots}
    return tuple((slots[a.slot_id], a.work_id) for a in before.assignments)


def plan_month(session: Session, settings: Settings, month: str, *,
               need: Mapping[str, int] | None = None, publish: bool = False,
               replan: bool = False, by: str | None = None, now: datetime | None = None,
               time_limit: float | None = None) -> PlanResult:
    """Solve ``month`` and store it.

    A first plan becomes the month's draft (``publish`` publishes it). A month already
    published is refused unless ``replan``: then shifts already started stay as they were,
    the rest changes as little as possible, and the changes are applied only with
    ``publish`` (else they are only returned).
    """
    first, end = store.month_span(month)
    now = now or datetime.now(settings.tz)
    lawyers = store.load_lawyers(session, today=now.date(), tz=settings.tz)
    if not lawyers:
        raise RosterError("roster.error", detail="还没有值班律师: 先用 hotline roster lawyers 导入")
    templates = load_templates(templates_path(settings))
    published = store.load_roster(session, first, end, settings.tz)
    need = dict(need or {})
    rules = rules_of(settings)
    if published.slots and not replan:
        raise RosterError("roster.published", month=month)
    if replan:
        if not published.slots:
            raise RosterError("roster.not_published", month=month)
        slots = list(published.slots)
        started = {s.id for s in slots if s.start <= now}
        fixed = tuple(a for a in published.assignments if a.slot_id in started)
        problem = Problem(tuple(slots), tuple(lawyers), templates.lines, rules, fixed=fixed,
                          previous=published.assignments,
                          history=_history(session, settings, first))
    else:
        slots = apply_need(month_slots(settings, month, templates), need,
                           settings.roster.staffing_line)
        problem = Problem(tuple(slots), tuple(lawyers), templates.lines, rules,
                          history=_history(session, settings, first))
    solution = solve(problem, time_limit=time_limit or settings.roster.solver_seconds)
    if replan:
        before = {(a.slot_id, a.work_id) for a in published.assignments}
        after = {(a.slot_id, a.work_id) for a in solution.assignments}
        removed = tuple(a for a in published.assignments
                        if (a.slot_id, a.work_id) not in after)
        added = tuple(a for a in solution.assignments if (a.slot_id, a.work_id) not in before)
        if publish:
            store.apply_changes(session, month, published, solution, by=by, need=need)
        return PlanResult(month, tuple(slots), solution, None, publish, removed, added)
    plan_id = store.save_draft(session, month, slots, solution, need=need, by=by)
    if publish:
        store.publish(session, month, by=by)
    return PlanResult(month, tuple(slots), solution, plan_id, publish)


def month_problem(session: Session, settings: Settings, month: str, *,
                  now: datetime | None = None) -> tuple[Problem, store.Roster]:
    """The published month as a problem (for checking swaps and showing violations)."""
    first, end = store.month_span(month)
    now = now or datetime.now(settings.tz)
    roster = store.load_roster(session, first, end, settings.tz)
    if not roster.slots:
        roster = store.load_roster(session, first, end, settings.tz, published=False)
    tpath = templates_path(settings)
    lines = load_templates(tpath).lines if tpath.is_file() else {}
    lawyers = store.load_lawyers(session, today=now.date(), tz=settings.tz)
    return Problem(roster.slots, tuple(lawyers), lines, rules_of(settings),
                   history=_history(session, settings, first)), roster


def decide_swap(session: Session, settings: Settings, swap_id: int, *, approve: bool,
                by: str, now: datetime | None = None) -> store.SwapView:
    """Approve (after checking every hard rule) or reject a swap request."""
    now = now or datetime.now(settings.tz)
    view = store.swap_parts(session, swap_id, settings.tz)
    if view.status != "pending":  # decided already: say so, not what the rules think now
        why = f"换班申请 {swap_id} 已处理 ({view.status})"
        raise RosterError("roster.swap_invalid", reasons=[why], summary=why)
    after: tuple[Assignment, ...] | None = None
    if approve:
        problem, roster = month_problem(session, settings, view.give.slot_id[:7])
        take = view.take
        if take is not None and take.slot_id[:7] != view.give.slot_id[:7]:
            # An exchange across months: check against both months' rosters.
            other, other_roster = month_problem(session, settings, take.slot_id[:7])
            problem = replace(problem, slots=problem.slots + other.slots)
            roster = replace(roster, assignments=roster.assignments + other_roster.assignments)
        started = [s for s in problem.slots if s.id in {view.give.slot_id, take.slot_id if take
                                                         else ""} and s.start <= now]
        if started:
            why = f"{started[0].label()} 已经开始, 不能再换班"
            raise RosterError("roster.swap_invalid", reasons=[why], summary=why)
        after = roster_rules.check_swap(problem, roster.assignments, view.give, view.to_work_id,
                                        take)
    return store.decide_swap(session, swap_id, approve=approve, by=by, after=after,
                             tz=settings.tz)
