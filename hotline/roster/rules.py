"""The roster's hard rules checked on any roster, its fairness figures, and shift swaps.

Pure functions over :mod:`.model` values, no solver: the solver's output, a hand-edited
roster and a swap a lawyer asks for are all judged here the same way. Every broken hard rule
is a :class:`~hotline.roster.model.Violation` with a stable code and a Chinese message that
names the shift (``Slot.label()``) and the lawyer (``姓名(工号)``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta

from hotline.domain import Category, Language
from hotline.errors import RosterError
from hotline.roster.model import (
    WEEKDAYS,
    WEEKDAYS_ZH,
    Assignment,
    Lawyer,
    Line,
    Problem,
    Rules,
    Slot,
    Violation,
    may_serve,
    rest_conflict,
)

# Skill codes that are not consultation categories but appear in lawyers' files.
_SKILL_ZH = {"family": "婚姻家庭", "civil": "民事", "general": "综合咨询", "company": "公司"}


# --- words -------------------------------------------------------------------------------


def who(lawyer: Lawyer) -> str:
    """A lawyer as operators read it: ``张三(L001)`` (the work id alone without a name)."""
    return f"{lawyer.name}({lawyer.work_id})" if lawyer.name else lawyer.work_id


def skill_label(skill: str) -> str:
    """The Chinese name of a skill code (``labor`` → 劳动争议)."""
    try:
        return Category(skill).label
    except ValueError:
        return _SKILL_ZH.get(skill, skill)


def language_label(language: Language | str) -> str:
    """The Chinese name of a language or dialect (``cantonese`` → 粤语)."""
    try:
        return Language(language).label
    except ValueError:
        return str(language)


def day_label(d: date) -> str:
    """``12月3日``."""
    return f"{d.month}月{d.day}日"


def hours_label(hours: float) -> str:
    """``11`` for 11.0, ``10.5`` for 10.5."""
    return f"{hours:g}"


def summary(reasons: Sequence[str], count: int = 3) -> str:
    """The first few reasons joined for an error's one-line ``summary``."""
    return "; ".join(reasons[:count])


def why_not(lawyer: Lawyer, slot: Slot, line: Line | None) -> str | None:
    """Why ``lawyer`` can never take ``slot``, in Chinese (None if they may).

    The same decision as :func:`~hotline.roster.model.may_serve`, worded for operators:
    ``请假`` / ``请假(病假)``, ``每周四不值班``, ``不在本线路``, ``不接受远程夜班`` …
    """
    code = may_serve(lawyer, slot, line)
    if code is None:
        return None
    if code == "roster.line":
        if lawyer.lines and slot.line not in lawyer.lines:
            return "不在本线路"
        if line is not None and line.languages and not (line.languages & lawyer.languages):
            names = "、".join(sorted(language_label(x) for x in line.languages))
            return f"不会本线路的语言({names})"
        if line is not None and line.min_practice_years:
            return f"执业不满 {line.min_practice_years} 年"
        return "不在本线路"
    if code == "roster.unavailable":
        if slot.date.weekday() in lawyer.off_weekdays:
            return f"每{WEEKDAYS_ZH[slot.date.weekday()]}不值班"
        for period in lawyer.unavailable:
            if period.overlaps(slot.start, slot.end) and period.reason:
                return "请假" if period.reason == "请假" else f"请假({period.reason})"
        return "请假"
    if code == "roster.remote":
        return "不接受远程夜班"
    return code


# --- limits and eligibility --------------------------------------------------------------


def shift_limit(lawyer: Lawyer, rules: Rules) -> int:
    """Most shifts the lawyer may work in the problem's period."""
    return rules.max_shifts if lawyer.max_shifts is None else lawyer.max_shifts


def night_limit(lawyer: Lawyer, rules: Rules) -> int:
    """Most night shifts on consecutive dates the lawyer may work."""
    if lawyer.max_consecutive_nights is None:
        return rules.max_consecutive_nights
    return lawyer.max_consecutive_nights


def is_remote(slot: Slot, lawyer: Lawyer) -> bool:
    """Whether the lawyer serves the slot from their own phone."""
    return slot.remote and slot.night and lawyer.remote_night


def eligible(problem: Problem) -> dict[str, frozenset[str]]:
    """Work ids of lawyers each fairness figure is taken over.

    ``shifts``: lawyers who may serve any slot; ``nights``: any night slot; ``weekends``: any
    weekend or holiday slot (or who hold a fixed assignment of that kind). A lawyer who can
    never work nights does not make the nights' spread look unfair.
    """
    slots = {s.id: s for s in problem.slots}
    out: dict[str, set[str]] = {"shifts": set(), "nights": set(), "weekends": set()}

    def add(lawyer_id: str, slot: Slot) -> None:
        out["shifts"].add(lawyer_id)
        if slot.night:
            out["nights"].add(lawyer_id)
        if slot.weekend_or_holiday:
            out["weekends"].add(lawyer_id)

    for lawyer in problem.lawyers:
        for slot in problem.slots:
            if may_serve(lawyer, slot, problem.lines.get(slot.line)) is None:
                add(lawyer.work_id, slot)
    known = {lawyer.work_id for lawyer in problem.lawyers}
    for a in problem.fixed:
        if a.slot_id in slots and a.work_id in known:
            add(a.work_id, slots[a.slot_id])
    return {k: frozenset(v) for k, v in out.items()}


def touches(slot: Slot, words: frozenset[str]) -> bool:
    """Whether a lawyer's ``prefer`` / ``avoid`` words name this slot (code or weekday)."""
    return slot.code in words or WEEKDAYS[slot.date.weekday()] in words


# --- hard rules --------------------------------------------------------------------------


def _runs(days: Iterable[date]) -> list[list[date]]:
    """Runs of consecutive calendar dates."""
    runs: list[list[date]] = []
    for d in sorted(set(days)):
        if runs and runs[-1][-1] + timedelta(days=1) == d:
            runs[-1].append(d)
        else:
            runs.append([d])
    return runs


def violations(problem: Problem, assignments: Iterable[Assignment]) -> list[Violation]:
    """Every broken hard rule of a roster, in a stable order.

    Codes: ``roster.unknown`` (an assignment to a slot or lawyer the problem does not
    know), ``roster.duplicate``, ``roster.line`` / ``roster.unavailable`` /
    ``roster.remote`` (see ``may_serve``), ``roster.coverage`` (fewer lawyers than the
    slot's head-count), ``roster.overstaffed``, ``roster.skill``, ``roster.language``,
    ``roster.rest`` (overlapping slots or less rest than ``rules.min_rest_hours``; the
    problem's history counts), ``roster.nights`` (more night shifts on consecutive dates than
    the lawyer's limit; history counts) and ``roster.max_shifts``.
    """
    rules = problem.rules
    slots = {s.id: s for s in problem.slots}
    lawyers = {lawyer.work_id: lawyer for lawyer in problem.lawyers}
    out: list[Violation] = []
    seen: Counter[tuple[str, str]] = Counter()
    staff: dict[str, list[Lawyer]] = defaultdict(list)
    worked: dict[str, list[Slot]] = defaultdict(list)
    for a in assignments:
        slot = slots.get(a.slot_id)
        lawyer = lawyers.get(a.work_id)
        if slot is None:
            out.append(Violation("roster.unknown", f"班表中有未知的班次 {a.slot_id}",
                                 a.slot_id, a.work_id))
            continue
        if lawyer is None:
            out.append(Violation("roster.unknown",
                                 f"{slot.label()} 排了未知的律师 {a.work_id}",
                                 a.slot_id, a.work_id))
            continue
        seen[(a.slot_id, a.work_id)] += 1
        if seen[(a.slot_id, a.work_id)] > 1:
            continue
        staff[slot.id].append(lawyer)
        worked[lawyer.work_id].append(slot)
        why = why_not(lawyer, slot, problem.lines.get(slot.line))
        if why is not None:
            code = may_serve(lawyer, slot, problem.lines.get(slot.line)) or "roster.line"
            out.append(Violation(code, f"{who(lawyer)} 不能值 {slot.label()}: {why}",
                                 slot.id, lawyer.work_id))
    for (slot_id, work_id), n in seen.items():
        if n > 1:
            out.append(Violation(
                "roster.duplicate",
                f"{who(lawyers[work_id])} 在 {slots[slot_id].label()} 重复排了 {n} 次",
                slot_id, work_id))
    for slot in problem.slots:
        out.extend(_slot_violations(slot, staff.get(slot.id, [])))
    history: dict[str, list[Slot]] = defaultdict(list)
    for hslot, work_id in problem.history:
        history[work_id].append(hslot)
    for lawyer in problem.lawyers:
        mine = worked.get(lawyer.work_id, [])
        past = history.get(lawyer.work_id, [])
        out.extend(_rest_violations(lawyer, mine, past, rules.min_rest_hours))
        out.extend(_night_violations(lawyer, mine, past, night_limit(lawyer, rules)))
        limit = shift_limit(lawyer, rules)
        if len(mine) > limit:
            out.append(Violation(
                "roster.max_shifts",
                f"{who(lawyer)} 本期排了 {len(mine)} 个班次, 超过上限 {limit} 个",
                None, lawyer.work_id))
    return out


def _slot_violations(slot: Slot, staff: Sequence[Lawyer]) -> list[Violation]:
    """Head-count, skill and language minimums of one slot."""
    out: list[Violation] = []
    need = slot.need
    if len(staff) < need.lawyers:
        out.append(Violation(
            "roster.coverage",
            f"{slot.label()} 需要 {need.lawyers} 名律师, 实际只排了 {len(staff)} 人",
            slot.id))
    elif len(staff) > need.lawyers:
        out.append(Violation(
            "roster.overstaffed",
            f"{slot.label()} 只需要 {need.lawyers} 名律师, 实际排了 {len(staff)} 人",
            slot.id))
    for skill, n in need.skills.items():
        have = sum(1 for lawyer in staff if lawyer.skills.get(skill, 0) >= need.min_proficiency)
        if have < n:
            level = f"(熟练度≥{need.min_proficiency})" if need.min_proficiency > 1 else ""
            out.append(Violation(
                "roster.skill",
                f"{slot.label()} 需要 {skill_label(skill)} 技能{level} {n} 人, 实际只有 {have} 人",
                slot.id))
    for language, n in need.languages.items():
        have = sum(1 for lawyer in staff if language in lawyer.languages)
        if have < n:
            out.append(Violation(
                "roster.language",
                f"{slot.label()} 需要会{language_label(language)}的律师 {n} 人, "
                f"实际只有 {have} 人",
                slot.id))
    return out


def _rest_violations(lawyer: Lawyer, mine: Sequence[Slot], past: Sequence[Slot],
                     rest_hours: float) -> list[Violation]:
    """Pairs of the lawyer's slots (at least one in the problem) too close together."""
    tagged = sorted([(s, False) for s in mine] + [(s, True) for s in past],
                    key=lambda t: t[0].start)
    if len(tagged) < 2:
        return []
    longest = max(s.end - s.start for s, _ in tagged)
    reach = longest + timedelta(hours=rest_hours)
    out: list[Violation] = []
    for i, (first, first_past) in enumerate(tagged):
        for second, second_past in tagged[i + 1:]:
            if second.start >= first.start + reach:
                break
            if (first_past and second_past) or not rest_conflict(first, second, rest_hours):
                continue
            if second.start < first.end:
                text = f"{who(lawyer)} 的 {first.label()} 与 {second.label()} 时间重叠"
            else:
                text = (f"{who(lawyer)} 的 {first.label()} 与 {second.label()} 之间"
                        f"休息不足 {hours_label(rest_hours)} 小时")
            slot_id = first.id if second_past else second.id
            out.append(Violation("roster.rest", text, slot_id, lawyer.work_id))
    return out


def _night_violations(lawyer: Lawyer, mine: Sequence[Slot], past: Sequence[Slot],
                      limit: int) -> list[Violation]:
    """Runs of night-shift dates longer than the lawyer's limit."""
    current = {s.date for s in mine if s.night}
    if not current:
        return []
    out: list[Violation] = []
    for run in _runs(current | {s.date for s in past if s.night}):
        if len(run) > limit and current.intersection(run):
            out.append(Violation(
                "roster.nights",
                f"{who(lawyer)} 从 {day_label(run[0])} 到 {day_label(run[-1])} 连续值 "
                f"{len(run)} 个夜班, 超过连续夜班上限 {limit} 个",
                None, lawyer.work_id))
    return out


# --- figures -----------------------------------------------------------------------------


def figures(problem: Problem, assignments: Iterable[Assignment]) -> dict[str, float]:
    """How fair and pleasant a roster is (whatever its hard violations).

    Spreads are max − min over the lawyers of :func:`eligible` (plus anyone assigned such a
    shift); ``firm_share_deviation`` is the largest gap, in percentage points, between a firm's
    share of the shifts and its share of the lawyers; ``continuity_changes`` counts a lawyer
    working shift code A one day and another code the next day.
    """
    slots = {s.id: s for s in problem.slots}
    lawyers = {lawyer.work_id: lawyer for lawyer in problem.lawyers}
    pairs = sorted({(a.slot_id, a.work_id) for a in assignments
                    if a.slot_id in slots and a.work_id in lawyers})
    pools = {k: set(v) for k, v in eligible(problem).items()}
    counts: dict[str, Counter[str]] = {k: Counter() for k in pools}
    preferred = avoided = 0
    codes: dict[tuple[str, date], set[str]] = defaultdict(set)
    for slot_id, work_id in pairs:
        slot, lawyer = slots[slot_id], lawyers[work_id]
        kinds = ["shifts"] + (["nights"] if slot.night else []) + (
            ["weekends"] if slot.weekend_or_holiday else [])
        for kind in kinds:
            counts[kind][work_id] += 1
            pools[kind].add(work_id)
        preferred += touches(slot, lawyer.prefer)
        avoided += touches(slot, lawyer.avoid)
        codes[(work_id, slot.date)].add(slot.code)
    out: dict[str, float] = {"assignments": float(len(pairs))}
    for kind in ("shifts", "nights", "weekends"):
        values = [counts[kind][w] for w in pools[kind]] or [0]
        out[f"{kind}_min"] = float(min(values))
        out[f"{kind}_max"] = float(max(values))
        out[f"{kind}_spread"] = float(max(values) - min(values))
    out["firm_share_deviation"] = firm_share_deviation(problem.lawyers, counts["shifts"])
    out["preferred_hits"] = float(preferred)
    out["avoided_hits"] = float(avoided)
    changes = 0
    for (work_id, d), today in codes.items():
        tomorrow = codes.get((work_id, d + timedelta(days=1)))
        if tomorrow and any(a != b for a in today for b in tomorrow):
            changes += 1
    out["continuity_changes"] = float(changes)
    return out


def firm_share_deviation(lawyers: Sequence[Lawyer], shifts: Counter[str]) -> float:
    """Max over firms of |firm's share of shifts − its share of lawyers|, in points."""
    total = sum(shifts[lawyer.work_id] for lawyer in lawyers)
    firms: dict[str, list[Lawyer]] = defaultdict(list)
    for lawyer in lawyers:
        if lawyer.firm:
            firms[lawyer.firm].append(lawyer)
    if not total or not firms:
        return 0.0
    worst = 0.0
    for members in firms.values():
        share = sum(shifts[m.work_id] for m in members) / total
        worst = max(worst, abs(share - len(members) / len(lawyers)) * 100)
    return round(worst, 2)


# --- swaps -------------------------------------------------------------------------------


def swap(assignments: Iterable[Assignment], give: Assignment, to_work_id: str,
         take: Assignment | None = None) -> tuple[Assignment, ...]:
    """The roster after ``give.work_id`` hands ``give`` to ``to_work_id``.

    With ``take`` (a slot of ``to_work_id``) it is an exchange: the giver takes ``take`` over.
    Only the roster's shape is checked here (the slots are the people's to give); the rules
    are :func:`check_swap`'s.

    Raises:
        RosterError: ``roster.swap_invalid`` when ``give`` / ``take`` are not in the roster,
            belong to other people, or the receiver already works that slot.
    """
    return _swap(tuple(assignments), give, to_work_id, take, lambda s: s, lambda w: w)


def _swap(roster: tuple[Assignment, ...], give: Assignment, to_work_id: str,
          take: Assignment | None, slot_name: Callable[[str], str],
          lawyer_name: Callable[[str], str]) -> tuple[Assignment, ...]:
    pairs = {(a.slot_id, a.work_id) for a in roster}
    giver, receiver = lawyer_name(give.work_id), lawyer_name(to_work_id)
    reasons: list[str] = []
    if (give.slot_id, give.work_id) not in pairs:
        reasons.append(f"班表中 {slot_name(give.slot_id)} 没有 {giver} 的班, 无法让出")
    if to_work_id == give.work_id:
        reasons.append(f"{giver} 不能把班次换给自己")
    elif (give.slot_id, to_work_id) in pairs:
        reasons.append(f"{receiver} 已经在 {slot_name(give.slot_id)} 值班")
    if take is not None:
        if take.work_id != to_work_id:
            reasons.append(f"要换来的 {slot_name(take.slot_id)} 是 "
                           f"{lawyer_name(take.work_id)} 的班, 不是 {receiver} 的")
        elif (take.slot_id, take.work_id) not in pairs:
            reasons.append(f"班表中 {slot_name(take.slot_id)} 没有 {receiver} 的班, 无法换来")
        if take.slot_id == give.slot_id:
            reasons.append("换班的两个班次是同一个班次")
        elif (take.slot_id, give.work_id) in pairs:
            reasons.append(f"{giver} 已经在 {slot_name(take.slot_id)} 值班")
    if reasons:
        raise RosterError("roster.swap_invalid", reasons=reasons, summary=summary(reasons))
    out: list[Assignment] = []
    gave = took = False
    for a in roster:
        if not gave and (a.slot_id, a.work_id) == (give.slot_id, give.work_id):
            out.append(Assignment(a.slot_id, to_work_id, a.remote))
            gave = True
        elif (take is not None and not took
              and (a.slot_id, a.work_id) == (take.slot_id, take.work_id)):
            out.append(Assignment(a.slot_id, give.work_id, a.remote))
            took = True
        else:
            out.append(a)
    return tuple(out)


def check_swap(problem: Problem, assignments: Iterable[Assignment], give: Assignment,
               to_work_id: str, take: Assignment | None = None) -> tuple[Assignment, ...]:
    """:func:`swap`, refused when it breaks a hard rule.

    The swap is refused when the new roster has a hard violation the old one did not have
    (every such violation concerns the two lawyers or the swapped slots: rest, nights, leave,
    skills of the slot …); violations the roster already had do not block it, so a swap that
    mends one problem while another remains is allowed. The moved assignments' ``remote``
    flags are set for their new lawyers.

    Raises:
        RosterError: ``roster.swap_invalid`` with the Chinese ``reasons``.
    """
    roster = tuple(assignments)
    slots = {s.id: s for s in problem.slots}
    lawyers = {lawyer.work_id: lawyer for lawyer in problem.lawyers}

    def slot_name(slot_id: str) -> str:
        return slots[slot_id].label() if slot_id in slots else slot_id

    def lawyer_name(work_id: str) -> str:
        return who(lawyers[work_id]) if work_id in lawyers else work_id

    if to_work_id not in lawyers:
        reasons = [f"没有工号为 {to_work_id} 的律师"]
        raise RosterError("roster.swap_invalid", reasons=reasons, summary=summary(reasons))
    new = _swap(roster, give, to_work_id, take, slot_name, lawyer_name)
    moved = {(give.slot_id, to_work_id)}
    if take is not None:
        moved.add((take.slot_id, give.work_id))
    new = tuple(
        Assignment(a.slot_id, a.work_id, is_remote(slots[a.slot_id], lawyers[a.work_id]))
        if (a.slot_id, a.work_id) in moved and a.slot_id in slots and a.work_id in lawyers
        else a
        for a in new)
    before = set(violations(problem, roster))
    fresh = [v for v in violations(problem, new) if v not in before]
    if fresh:
        reasons = [v.message for v in fresh]
        raise RosterError("roster.swap_invalid", reasons=reasons, summary=summary(reasons))
    return new
