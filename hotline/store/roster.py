"""The roster in the ledger: lawyers' rules, planned and published shifts, swaps, notes.

Rows in, :mod:`hotline.roster.model` values out (and back). Shifts of a month are either a
draft (``published_at`` empty, replaced by each new plan) or published (changed only by a
re-plan or an approved swap, assignment by assignment, so the rest stays as lawyers know it).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hotline.domain import Language, Role
from hotline.errors import RosterError
from hotline.roster.model import Assignment, DayKind, Lawyer, Need, Period, Slot, Solution
from hotline.store.tables import (
    HandoverNote,
    RosterAssignment,
    RosterPlan,
    Shift,
    SwapRequest,
    Unavailability,
    User,
    UserLanguage,
    UserSkill,
    utcnow,
)
from hotline.store.users import _firm, ensure_skills

ACTIVE = ("planned", "confirmed", "swapped")


# --- lawyers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    """What ``import_lawyers`` did."""

    created: tuple[str, ...]
    updated: tuple[str, ...]


def import_lawyers(session: Session, lawyers: Sequence[Lawyer], *, today: date) -> ImportResult:
    """Create or update duty lawyers and their roster rules and leave.

    New accounts get an unusable random password (``hotline users passwd`` sets one). A
    lawyer's leave periods are replaced by the file's.
    """
    ensure_skills(session, {code for lawyer in lawyers for code in lawyer.skills})
    created, updated = [], []
    for lawyer in lawyers:
        user = session.scalar(select(User).where(User.work_id == lawyer.work_id))
        if user is None:
            user = User(work_id=lawyer.work_id, name=lawyer.name or lawyer.work_id,
                        role=Role.LAWYER,
                        password_hash=PasswordHasher().hash(secrets.token_urlsafe(24)))
            session.add(user)
            created.append(lawyer.work_id)
        else:
            updated.append(lawyer.work_id)
            if lawyer.name:
                user.name = lawyer.name
        user.firm = _firm(session, lawyer.firm or None)
        user.max_shifts_per_month = lawyer.max_shifts
        user.max_consecutive_nights = lawyer.max_consecutive_nights
        user.remote_night_allowed = lawyer.remote_night
        if lawyer.practice_years is not None:
            user.practice_since = today - timedelta(days=round(lawyer.practice_years * 365.25))
        user.roster_rules = {"off_weekdays": sorted(lawyer.off_weekdays),
                             "prefer": sorted(lawyer.prefer), "avoid": sorted(lawyer.avoid),
                             "lines": sorted(lawyer.lines)}
        user.skills = [UserSkill(skill_code=c, proficiency=p)
                       for c, p in sorted(lawyer.skills.items())]
        user.languages = [UserLanguage(language=Language(lang), position=i)
                          for i, lang in enumerate(sorted(lawyer.languages))]
        session.flush()
        session.execute(delete(Unavailability).where(Unavailability.user_id == user.id))
        for p in lawyer.unavailable:
            session.add(Unavailability(user_id=user.id, starts_at=p.start, ends_at=p.end,
                                       reason=p.reason or None))
    session.flush()
    return ImportResult(tuple(created), tuple(updated))


def load_lawyers(session: Session, *, today: date, tz: tzinfo) -> list[Lawyer]:
    """Every active duty lawyer as the solver sees them."""
    users = session.scalars(select(User).where(User.role == Role.LAWYER, User.active.is_(True))
                            .order_by(User.work_id)).all()
    leave: dict[int, list[Period]] = {}
    for row in session.scalars(select(Unavailability)):
        leave.setdefault(row.user_id, []).append(
            Period(row.starts_at.astimezone(tz), row.ends_at.astimezone(tz), row.reason or ""))
    out = []
    for u in users:
        rules: Mapping[str, Any] = u.roster_rules or {}
        years = ((today - u.practice_since).days / 365.25) if u.practice_since else None
        out.append(Lawyer(
            work_id=u.work_id, name=u.name, firm=u.firm.name if u.firm else "",
            skills={s.skill_code: s.proficiency for s in u.skills},
            languages=frozenset(lang.language for lang in u.languages)
            or frozenset({Language.MANDARIN}),
            max_shifts=u.max_shifts_per_month,
            max_consecutive_nights=u.max_consecutive_nights,
            unavailable=tuple(sorted(leave.get(u.id, []), key=lambda p: p.start)),
            off_weekdays=frozenset(int(d) for d in rules.get("off_weekdays", [])),
            prefer=frozenset(rules.get("prefer", [])), avoid=frozenset(rules.get("avoid", [])),
            remote_night=u.remote_night_allowed, practice_years=years,
            lines=frozenset(rules.get("lines", []))))
    return out


def add_leave(session: Session, work_id: str, start: datetime, end: datetime,
              reason: str = "") -> None:
    """Record that a lawyer cannot work ``[start, end)`` (illness, court)."""
    user = _user(session, work_id)
    if end <= start:
        raise RosterError("roster.error", detail="请假结束时间必须晚于开始时间")
    session.add(Unavailability(user_id=user.id, starts_at=start, ends_at=end,
                               reason=reason or None))
    session.flush()


# --- shifts and assignments ---------------------------------------------------------------


@dataclass(frozen=True)
class Roster:
    """Shifts and assignments of a span, with the ledger's ids."""

    slots: tuple[Slot, ...]
    assignments: tuple[Assignment, ...]
    shift_ids: Mapping[str, int]  # slot id → shifts.id
    assignment_ids: Mapping[tuple[str, str], int]  # (slot id, work id) → id
    published: bool


def _need_json(need: Need) -> dict[str, Any]:
    return {"lawyers": need.lawyers, "skills": dict(need.skills),
            "languages": {str(k): v for k, v in need.languages.items()},
            "min_proficiency": need.min_proficiency}


def _need(data: Mapping[str, Any]) -> Need:
    return Need(int(data.get("lawyers", 0)), dict(data.get("skills", {})),
                {Language(k): int(v) for k, v in data.get("languages", {}).items()},
                int(data.get("min_proficiency", 1)))


def slot_of(row: Shift, tz: tzinfo) -> Slot:
    """A shift row as a slot."""
    kind: DayKind = row.kind if row.kind in ("workday", "weekend", "holiday") else "workday"  # type: ignore[assignment]
    return Slot(row.date, row.line, row.code, row.name or row.code, row.starts_at.astimezone(tz),
                row.ends_at.astimezone(tz), _need(row.required or {}), kind, row.night,
                row.remote)


def month_span(month: str) -> tuple[date, date]:
    """First day of ``YYYY-MM`` and first day of the next month."""
    try:
        year, mon = (int(x) for x in month.split("-"))
        first = date(year, mon, 1)
    except ValueError:
        raise RosterError("roster.bad_month", value=month) from None
    return first, (first + timedelta(days=32)).replace(day=1)


def load_roster(session: Session, start: date, end: date, tz: tzinfo, *,
                published: bool = True) -> Roster:
    """Shifts dated ``[start, end)`` (published ones, or the draft) and their assignments."""
    q = select(Shift).where(Shift.date >= start, Shift.date < end)
    q = q.where(Shift.published_at.is_not(None) if published else Shift.published_at.is_(None))
    rows = session.scalars(q.order_by(Shift.starts_at, Shift.line, Shift.code)).all()
    ids = {r.id: slot_of(r, tz) for r in rows}
    assignments, aids = [], {}
    if ids:
        q2 = (select(RosterAssignment, User.work_id).join(User)
              .where(RosterAssignment.shift_id.in_(ids), RosterAssignment.status.in_(ACTIVE))
              .order_by(RosterAssignment.shift_id, User.work_id))
        for a, work_id in session.execute(q2):
            slot = ids[a.shift_id]
            assignments.append(Assignment(slot.id, work_id, a.remote))
            aids[(slot.id, work_id)] = a.id
    return Roster(tuple(ids.values()), tuple(assignments),
                  {s.id: i for i, s in ids.items()}, aids, published)


def _user(session: Session, work_id: str) -> User:
    user = session.scalar(select(User).where(User.work_id == work_id))
    if user is None:
        raise RosterError("roster.not_found", what="工号", key=work_id)
    return user


def _user_ids(session: Session, work_ids: Iterable[str]) -> dict[str, int]:
    wanted = set(work_ids)
    found = dict(session.execute(select(User.work_id, User.id).where(User.work_id.in_(wanted)))
                 .all()) if wanted else {}
    missing = wanted - set(found)
    if missing:
        raise RosterError("roster.not_found", what="工号", key=", ".join(sorted(missing)))
    return found


def save_draft(session: Session, month: str, slots: Sequence[Slot], solution: Solution, *,
               need: Mapping[str, int], by: str | None) -> int:
    """Store a plan as the month's draft (replacing the previous draft); returns its id."""
    start, end = month_span(month)
    old = select(Shift.id).where(Shift.date >= start, Shift.date < end,
                                 Shift.published_at.is_(None))
    session.execute(delete(RosterAssignment).where(RosterAssignment.shift_id.in_(old)))
    session.execute(delete(Shift).where(Shift.date >= start, Shift.date < end,
                                        Shift.published_at.is_(None)))
    session.execute(delete(RosterPlan).where(RosterPlan.month == month,
                                             RosterPlan.status == "draft"))
    users = _user_ids(session, {a.work_id for a in solution.assignments})
    shift_ids = {}
    for slot in slots:
        row = Shift(date=slot.date, code=slot.code, line=slot.line, starts_at=slot.start,
                    ends_at=slot.end, required=_need_json(slot.need), name=slot.name,
                    night=slot.night, remote=slot.remote, kind=slot.kind)
        session.add(row)
        session.flush()
        shift_ids[slot.id] = row.id
    for a in solution.assignments:
        session.add(RosterAssignment(shift_id=shift_ids[a.slot_id], user_id=users[a.work_id],
                                     remote=a.remote))
    plan = RosterPlan(month=month, status="draft", solver_status=solution.status,
                      objective=solution.objective, bound=solution.bound,
                      seconds=solution.seconds, changes=solution.changes,
                      figures=dict(solution.figures), need=dict(need),
                      created_by=_user(session, by).id if by else None)
    session.add(plan)
    session.flush()
    return plan.id


def publish(session: Session, month: str, *, by: str | None) -> int:
    """Publish the month's draft; refused when the month is published already."""
    start, end = month_span(month)
    if session.scalar(select(Shift.id).where(Shift.date >= start, Shift.date < end,
                                             Shift.published_at.is_not(None)).limit(1)):
        raise RosterError("roster.published", month=month)
    plan = session.scalar(select(RosterPlan).where(RosterPlan.month == month,
                                                   RosterPlan.status == "draft"))
    if plan is None:
        raise RosterError("roster.not_found", what="草稿班表", key=month)
    now = utcnow()
    for row in session.scalars(select(Shift).where(Shift.date >= start, Shift.date < end)):
        row.published_at = now
    plan.status, plan.published_at = "published", now
    plan.published_by = _user(session, by).id if by else None
    session.flush()
    return plan.id


def apply_changes(session: Session, month: str, roster: Roster, solution: Solution, *,
                  by: str | None, need: Mapping[str, int]) -> tuple[list[Assignment],
                                                                    list[Assignment]]:
    """Change a published month to ``solution`` assignment by assignment.

    Returns (removed, added). Unchanged assignments keep their rows (and their status).
    """
    before = {(a.slot_id, a.work_id): a for a in roster.assignments}
    after = {(a.slot_id, a.work_id): a for a in solution.assignments}
    removed = [before[k] for k in sorted(before.keys() - after.keys())]
    added = [after[k] for k in sorted(after.keys() - before.keys())]
    users = _user_ids(session, {a.work_id for a in added})
    for a in removed:
        row = session.get(RosterAssignment, roster.assignment_ids[(a.slot_id, a.work_id)])
        if row is not None:
            row.status = "absent"
    for a in added:
        session.add(RosterAssignment(shift_id=roster.shift_ids[a.slot_id],
                                     user_id=users[a.work_id], remote=a.remote))
    for plan in session.scalars(select(RosterPlan).where(RosterPlan.month == month,
                                                         RosterPlan.status == "published")):
        plan.status = "superseded"
    now = utcnow()
    session.add(RosterPlan(month=month, status="published", solver_status=solution.status,
                           objective=solution.objective, bound=solution.bound,
                           seconds=solution.seconds, changes=solution.changes,
                           figures=dict(solution.figures), need=dict(need),
                           created_by=_user(session, by).id if by else None,
                           published_at=now,
                           published_by=_user(session, by).id if by else None))
    session.flush()
    return removed, added


def latest_plan(session: Session, month: str) -> RosterPlan | None:
    """The month's current plan (published before draft)."""
    plans = session.scalars(select(RosterPlan).where(
        RosterPlan.month == month, RosterPlan.status.in_(("published", "draft")))
        .order_by(RosterPlan.id.desc())).all()
    return next((p for p in plans if p.status == "published"), plans[0] if plans else None)


# --- duty (who is on shift when) ----------------------------------------------------------


@dataclass(frozen=True)
class DutySpan:
    """A lawyer's published shift."""

    work_id: str
    shift_id: int
    line: str
    code: str
    name: str
    start: datetime
    end: datetime
    remote: bool


def duty_spans(session: Session, start: datetime, end: datetime) -> list[DutySpan]:
    """Published assignments of shifts overlapping ``[start, end)``."""
    q = (select(RosterAssignment, Shift, User.work_id)
         .join(Shift, RosterAssignment.shift_id == Shift.id)
         .join(User, RosterAssignment.user_id == User.id)
         .where(Shift.published_at.is_not(None), RosterAssignment.status.in_(ACTIVE),
                Shift.starts_at < end, Shift.ends_at > start)
         .order_by(Shift.starts_at))
    return [DutySpan(work_id, s.id, s.line, s.code, s.name or s.code, s.starts_at, s.ends_at,
                     a.remote) for a, s, work_id in session.execute(q)]


def any_published(session: Session, start: datetime, end: datetime) -> bool:
    """Whether a published shift overlaps ``[start, end)`` (the roster is in force)."""
    return session.scalar(select(Shift.id).where(
        Shift.published_at.is_not(None), Shift.starts_at < end, Shift.ends_at > start)
        .limit(1)) is not None


# --- swaps ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SwapView:
    """A swap request as consoles and the CLI show it."""

    id: int
    status: str
    requested_by: str
    give: Assignment
    give_label: str
    to_work_id: str
    take: Assignment | None
    take_label: str
    note: str
    requested_at: datetime
    decided_by: str | None


def _assignment(session: Session, slot_id: str, work_id: str,
                tz: tzinfo) -> tuple[RosterAssignment, Slot]:
    day, line, code = (slot_id.split("/") + ["", "", ""])[:3]
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise RosterError("roster.not_found", what="班次", key=slot_id) from None
    row = session.execute(
        select(RosterAssignment, Shift).join(Shift, RosterAssignment.shift_id == Shift.id)
        .join(User, RosterAssignment.user_id == User.id)
        .where(Shift.date == when, Shift.line == line, Shift.code == code,
               Shift.published_at.is_not(None), User.work_id == work_id,
               RosterAssignment.status.in_(ACTIVE))).first()
    if row is None:
        raise RosterError("roster.not_found", what=f"{work_id} 的班次", key=slot_id)
    return row[0], slot_of(row[1], tz)


def request_swap(session: Session, work_id: str, slot_id: str, to_work_id: str, *,
                 take_slot_id: str | None = None, note: str = "", tz: tzinfo,
                 now: datetime | None = None) -> int:
    """A lawyer asks to hand their published shift to a colleague (or to exchange)."""
    give, give_slot = _assignment(session, slot_id, work_id, tz)
    take, take_slot = _assignment(session, take_slot_id, to_work_id, tz) if take_slot_id \
        else (None, None)
    now = now or utcnow()
    for slot in (give_slot, take_slot):
        if slot is not None and slot.start <= now:
            why = f"{slot.label()} 已经开始, 不能再换班"
            raise RosterError("roster.swap_invalid", reasons=[why], summary=why)
    if work_id == to_work_id:
        raise RosterError("roster.swap_invalid", reasons=["不能与自己换班"],
                          summary="不能与自己换班")
    if session.scalar(select(SwapRequest.id).where(SwapRequest.assignment_id == give.id,
                                                   SwapRequest.status == "pending")):
        why = f"班次 {slot_id} 已有待审批的换班申请"
        raise RosterError("roster.swap_invalid", reasons=[why], summary=why)
    row = SwapRequest(assignment_id=give.id, requested_by=_user(session, work_id).id,
                      to_user_id=_user(session, to_work_id).id,
                      take_assignment_id=take.id if take else None, note=note or None)
    session.add(row)
    session.flush()
    return row.id


def swaps(session: Session, tz: tzinfo, *, status: str | None = None,
          work_id: str | None = None, swap_id: int | None = None) -> list[SwapView]:
    """Swap requests, newest first (one lawyer's: asked by or of them; or one by id)."""
    q = select(SwapRequest).order_by(SwapRequest.id.desc())
    if status:
        q = q.where(SwapRequest.status == status)
    if swap_id is not None:
        q = q.where(SwapRequest.id == swap_id)
    views = []
    names = dict(session.execute(select(User.id, User.work_id)).all())
    for r in session.scalars(q):
        give_row = session.get(RosterAssignment, r.assignment_id)
        take_row = session.get(RosterAssignment, r.take_assignment_id) \
            if r.take_assignment_id else None
        if give_row is None:
            continue
        give_slot = slot_of(session.get_one(Shift, give_row.shift_id), tz)
        take_slot = slot_of(session.get_one(Shift, take_row.shift_id), tz) if take_row else None
        to = names.get(r.to_user_id or 0, "")
        view = SwapView(r.id, r.status, names[r.requested_by],
                        Assignment(give_slot.id, names[give_row.user_id], give_row.remote),
                        give_slot.label(), to,
                        Assignment(take_slot.id, to, take_row.remote)
                        if take_slot and take_row else None,
                        take_slot.label() if take_slot else "", r.note or "",
                        r.requested_at, names.get(r.decided_by or 0))
        if work_id and work_id not in (view.requested_by, view.to_work_id):
            continue
        views.append(view)
    return views


def decide_swap(session: Session, swap_id: int, *, approve: bool, by: str,
                after: Sequence[Assignment] | None, tz: tzinfo) -> SwapView:
    """Record a scheduler's decision; on approval write the validated roster change.

    ``after`` is the month's roster with the swap applied (already checked against the hard
    rules by :func:`hotline.roster.rules.check_swap`).
    """
    row = session.get(SwapRequest, swap_id)
    if row is None:
        raise RosterError("roster.not_found", what="换班申请", key=swap_id)
    if row.status != "pending":
        why = f"换班申请 {swap_id} 已处理 ({row.status})"
        raise RosterError("roster.swap_invalid", reasons=[why], summary=why)  # 409, not 400
    row.status = "approved" if approve else "rejected"
    row.decided_at, row.decided_by = utcnow(), _user(session, by).id
    if approve:
        give = session.get_one(RosterAssignment, row.assignment_id)
        give.status = "absent"
        session.add(RosterAssignment(shift_id=give.shift_id, user_id=row.to_user_id,
                                     status="swapped", remote=_remote(after, session, give,
                                                                     row.to_user_id, tz)))
        if row.take_assignment_id:
            take = session.get_one(RosterAssignment, row.take_assignment_id)
            take.status = "absent"
            session.add(RosterAssignment(shift_id=take.shift_id, user_id=give.user_id,
                                         status="swapped",
                                         remote=_remote(after, session, take, give.user_id,
                                                        tz)))
    session.flush()
    return swap_parts(session, swap_id, tz)


def _remote(after: Sequence[Assignment] | None, session: Session, row: RosterAssignment,
            user_id: int | None, tz: tzinfo) -> bool:
    slot = slot_of(session.get_one(Shift, row.shift_id), tz)
    work_id = session.get_one(User, user_id).work_id
    return any(a.remote for a in after or () if a.slot_id == slot.id and a.work_id == work_id)


def swap_parts(session: Session, swap_id: int, tz: tzinfo) -> SwapView:
    """One swap request."""
    for v in swaps(session, tz, swap_id=swap_id):
        return v
    raise RosterError("roster.not_found", what="换班申请", key=swap_id)


# --- handover notes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Handover:
    """A handover note."""

    id: int
    line: str
    author: str
    author_name: str
    text: str
    created_at: datetime


def add_handover(session: Session, work_id: str, line: str, text: str,
                 shift_id: int | None = None) -> int:
    """The outgoing shift's note for the incoming one."""
    text = text.strip()
    if not text:
        raise RosterError("roster.error", detail="交接班记录不能为空")
    row = HandoverNote(line=line, shift_id=shift_id, author_id=_user(session, work_id).id,
                       text=text[:4000])
    session.add(row)
    session.flush()
    return row.id


def handovers(session: Session, *, since: datetime, line: str | None = None,
              limit: int = 20) -> list[Handover]:
    """Notes written since ``since``, newest first."""
    q = (select(HandoverNote, User).join(User, HandoverNote.author_id == User.id)
         .where(HandoverNote.created_at >= since).order_by(HandoverNote.id.desc()).limit(limit))
    if line:
        q = q.where(HandoverNote.line == line)
    return [Handover(n.id, n.line, u.work_id, u.name, n.text, n.created_at)
            for n, u in session.execute(q)]
