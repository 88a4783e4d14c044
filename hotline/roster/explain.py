"""Why no roster exists: precise Chinese reasons for ``roster.infeasible``.

Three layers, cheapest first:

a) per slot: fewer lawyers who may serve it than its head-count, skill or language minimum
   (naming who is excluded and why: 请假, 不在本线路, 不接受远程夜班 …); slots that no one
   can work two of (pairwise overlapping or too close for the rest rule) needing more
   lawyers together than can serve any of them;
b) over the period: seats against what the lawyers' monthly limits, rest and leave allow;
   night seats against the consecutive-nights limits; seats needing a skill or language
   against its holders' capacity;
c) when all of that passes, the CP-SAT model with one assumption literal per rule group
   (coverage / skill / language of a slot; rest, nights, shifts per month of a lawyer): the
   solver's sufficient assumptions for infeasibility, shrunk by dropping each group once,
   are the rules in conflict.

Every capacity in a) and b) is an upper bound, so a pre-check never reports a problem that
a roster could in fact satisfy.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, timedelta

from ortools.sat.python import cp_model

from hotline.roster.model import Lawyer, Problem, Slot, may_serve, rest_conflict
from hotline.roster.rules import (
    day_label,
    hours_label,
    language_label,
    night_limit,
    shift_limit,
    skill_label,
    violations,
    who,
    why_not,
)
from hotline.roster.solver import Group, RosterModel

_LISTED = 5  # excluded lawyers named per reason
_LISTED_CLIQUES = 3  # groups of slots in rest conflict described in full


def explain(problem: Problem, *, time_limit: float = 20.0) -> list[str]:
    """Chinese sentences saying why no roster satisfies the hard rules (at least one).

    Args:
        problem: The problem the solver could not roster.
        time_limit: Seconds for the assumption search of layer c).
    """
    reasons = prechecks(problem)
    if reasons:
        return reasons
    return _conflicts(problem, time_limit)


def prechecks(problem: Problem) -> list[str]:
    """Layers a) and b): reasons found without a search (empty when they all pass)."""
    reasons = _slot_checks(problem)
    reasons += _clique_checks(problem, reasons)
    reasons += _capacity_checks(problem)
    return reasons


# --- a) per slot -------------------------------------------------------------------------


def _names(lawyers: Sequence[Lawyer], limit: int = _LISTED) -> str:
    text = "、".join(who(lawyer) for lawyer in lawyers[:limit])
    return text + (f" 等 {len(lawyers)} 人" if len(lawyers) > limit else "")


def _excluded(problem: Problem, slots: Sequence[Slot], lawyers: Sequence[Lawyer]) -> str:
    """``王五(L003) 请假、赵六(L007) 不在本线路`` for lawyers who may serve none of ``slots``."""
    parts = []
    for lawyer in lawyers:
        why = why_not(lawyer, slots[0], problem.lines.get(slots[0].line))
        parts.append(f"{who(lawyer)} {why or '不可排'}")
    text = "、".join(parts[:_LISTED])
    return text + (f" 等 {len(parts)} 人" if len(parts) > _LISTED else "")


def _open_slots(problem: Problem) -> list[Slot]:
    """Slots the solver decides (those with fixed assignments are facts)."""
    known = {lawyer.work_id for lawyer in problem.lawyers}
    fixed = {a.slot_id for a in problem.fixed if a.work_id in known}
    return [s for s in problem.slots if s.id not in fixed]


def _candidates(problem: Problem, slot: Slot) -> list[Lawyer]:
    line = problem.lines.get(slot.line)
    return [lawyer for lawyer in problem.lawyers if may_serve(lawyer, slot, line) is None]


def _slot_checks(problem: Problem) -> list[str]:
    reasons: list[str] = []
    for slot in _open_slots(problem):
        need = slot.need
        can = _candidates(problem, slot)
        cannot = [lawyer for lawyer in problem.lawyers if lawyer not in can]
        if len(can) < need.lawyers:
            text = (f"{slot.label()} 需要 {need.lawyers} 名律师, "
                    f"只有 {len(can)} 人可排 (共 {len(problem.lawyers)} 名律师)")
            if cannot:
                text += f"; 不可排: {_excluded(problem, [slot], cannot)}"
            reasons.append(text)
        for skill, n in need.skills.items():
            level = f"(熟练度≥{need.min_proficiency})" if need.min_proficiency > 1 else ""
            head = f"{slot.label()} 需要 {skill_label(skill)} 技能{level} {n} 人"
            holders = [x for x in problem.lawyers if x.skills.get(skill, 0) >= need.min_proficiency]
            reasons += _minimum(problem, slot, head, n, holders, can)
        for language, n in need.languages.items():
            head = f"{slot.label()} 需要会{language_label(language)}的律师 {n} 人"
            speakers = [x for x in problem.lawyers if language in x.languages]
            reasons += _minimum(problem, slot, head, n, speakers, can)
    return reasons


def _minimum(problem: Problem, slot: Slot, head: str, n: int, holders: Sequence[Lawyer],
             can: Sequence[Lawyer]) -> list[str]:
    ok = [lawyer for lawyer in holders if lawyer in can]
    if len(ok) >= n:
        return []
    out = [lawyer for lawyer in holders if lawyer not in can]
    if not holders:
        return [f"{head}, 律师名单中没有符合条件的律师"]
    if not ok:
        return [f"{head}, 可排律师中没有: {_excluded(problem, [slot], out)}"]
    return [f"{head}, 可排律师中只有 {len(ok)} 人 ({_names(ok)}); "
            f"不可排: {_excluded(problem, [slot], out)}"]


def _clique_checks(problem: Problem, earlier: Sequence[str]) -> list[str]:
    """Groups of slots pairwise in rest conflict: one lawyer works at most one of them."""
    rest = problem.rules.min_rest_hours
    slots = sorted(_open_slots(problem), key=lambda s: s.start)
    if len(slots) < 2:
        return []
    short = {s.id for s in slots if len(_candidates(problem, s)) < s.need.lawyers}
    reach = max(s.end - s.start for s in slots) + timedelta(hours=rest)
    reported: set[str] = set()
    reasons: list[str] = []
    more: list[date] = []
    for i, first in enumerate(slots):
        clique = [first]
        for other in slots[i + 1:]:
            if other.start >= first.start + reach:
                break
            if all(rest_conflict(member, other, rest) for member in clique):
                clique.append(other)
        key = {s.id for s in clique}
        if len(clique) < 2 or key & (short | reported):
            continue
        seats = sum(s.need.lawyers for s in clique)
        pool = {x.work_id for s in clique for x in _candidates(problem, s)}
        if len(pool) >= seats:
            continue
        reported |= key
        if len(reasons) >= _LISTED_CLIQUES:
            more.append(first.date)
            continue
        cannot = [x for x in problem.lawyers if x.work_id not in pool]
        labels = "、".join(s.label() for s in clique)
        text = (f"{labels} 两两之间重叠或休息不足 {hours_label(rest)} 小时, 同一名律师只能值"
                f"其中一个班, 共需 {seats} 名律师, 但只有 {len(pool)} 人可排 "
                f"(共 {len(problem.lawyers)} 名律师)")
        if cannot:
            text += f"; 不可排: {_excluded(problem, clique, cannot)}"
        reasons.append(text)
    if more:
        reasons.append(f"另有 {len(more)} 组班次有同样的问题 ({day_label(more[0])}至"
                       f"{day_label(more[-1])})")
    return reasons


# --- b) over the period ------------------------------------------------------------------


def _most_apart(slots: Sequence[Slot], rest_hours: float) -> int:
    """Most of ``slots`` one lawyer can work under the rest rule (exact: interval greedy).

    Two slots conflict exactly when ``[start, end + rest)`` intervals overlap, so taking the
    slot whose rest ends first, again and again, is optimal.
    """
    taken = 0
    free_from = None
    for slot in sorted(slots, key=lambda s: s.end):
        if free_from is None or slot.start >= free_from:
            taken += 1
            free_from = slot.end + timedelta(hours=rest_hours)
    return taken


def _night_days(days: set[date], limit: int) -> int:
    """Most of ``days`` one lawyer can take with at most ``limit`` consecutive (greedy)."""
    if limit <= 0:
        return 0
    taken = run = 0
    last: date | None = None
    for d in sorted(days):
        if last is not None and d - last == timedelta(days=1):
            if run >= limit:
                continue  # skipped: the next day starts a new run
            run += 1
        else:
            run = 1
        taken += 1
        last = d
    return taken


def _capacity_checks(problem: Problem) -> list[str]:
    rules = problem.rules
    slots = _open_slots(problem)
    fixed_count: dict[str, int] = defaultdict(int)
    known = {s.id for s in problem.slots}
    for a in problem.fixed:
        if a.slot_id in known:
            fixed_count[a.work_id] += 1
    serve: dict[str, list[Slot]] = {
        lawyer.work_id: [s for s in slots
                         if may_serve(lawyer, s, problem.lines.get(s.line)) is None]
        for lawyer in problem.lawyers}

    def room(lawyer: Lawyer) -> int:
        return max(0, shift_limit(lawyer, rules) - fixed_count[lawyer.work_id])

    def capacity(lawyer: Lawyer, keep: set[str] | None = None) -> int:
        mine = [s for s in serve[lawyer.work_id] if keep is None or s.id in keep]
        return min(room(lawyer), _most_apart(mine, rules.min_rest_hours))

    reasons: list[str] = []
    seats = sum(s.need.lawyers for s in slots)
    cap = sum(capacity(lawyer) for lawyer in problem.lawyers)
    if cap < seats:
        reasons.append(
            f"本期共需排 {seats} 个班次席位, 但 {len(problem.lawyers)} 名律师按各自的班次上限"
            f"(默认每人 {rules.max_shifts} 个)、休息规则 ({hours_label(rules.min_rest_hours)} "
            f"小时) 和可值班日期, 最多只能值 {cap} 个班")
    nights = [s for s in slots if s.night]
    seats = sum(s.need.lawyers for s in nights)
    if seats:
        cap = 0
        for lawyer in problem.lawyers:
            mine = [s for s in serve[lawyer.work_id] if s.night]
            if not mine:
                continue
            per_day: dict[date, list[Slot]] = defaultdict(list)
            for s in mine:
                per_day[s.date].append(s)
            widest = max(_most_apart(v, rules.min_rest_hours) for v in per_day.values())
            by_runs = _night_days(set(per_day), night_limit(lawyer, rules)) * widest
            cap += min(room(lawyer), _most_apart(mine, rules.min_rest_hours), by_runs)
        if cap < seats:
            reasons.append(
                f"本期共有 {seats} 个夜班席位, 但按连续夜班上限 (默认最多连续 "
                f"{rules.max_consecutive_nights} 个)、班次上限和可值班日期, 全部律师最多只能"
                f"值 {cap} 个夜班")
    wanted: dict[tuple[str, str, int], list[Slot]] = defaultdict(list)
    for s in slots:
        for skill, n in s.need.skills.items():
            wanted[("skill", skill, s.need.min_proficiency)].extend([s] * n)
        for language, n in s.need.languages.items():
            wanted[("language", str(language), 0)].extend([s] * n)
    for (kind, key, level), seats_list in wanted.items():
        keep = {s.id for s in seats_list}
        if kind == "skill":
            holders = [x for x in problem.lawyers if x.skills.get(key, 0) >= level]
            what = f" {skill_label(key)} 技能" + (f"(熟练度≥{level})" if level > 1 else "")
            whom = "具备此技能"
        else:
            holders = [x for x in problem.lawyers if key in {str(v) for v in x.languages}]
            what = f"会{language_label(key)}的律师"
            whom = f"会{language_label(key)}"
        if not holders:
            continue  # the per-slot checks already said so
        cap = sum(capacity(x, keep) for x in holders)
        if cap < len(seats_list):
            reasons.append(
                f"本期共有 {len(seats_list)} 个席位需要{what}, 但{whom}的 {len(holders)} "
                f"名律师 ({_names(holders)}) 按班次上限、休息规则和可值班日期最多只能值"
                f"其中 {cap} 个")
    return reasons


# --- c) the assumption core --------------------------------------------------------------


def _check(built: RosterModel, lits: Sequence[cp_model.IntVar],
           seconds: float) -> tuple[cp_model.CpSolverStatus, list[cp_model.IntVar],
                                    cp_model.CpSolver]:
    """Solve with ``lits`` assumed; on infeasibility the assumptions that suffice."""
    built.model.clear_assumptions()
    built.model.add_assumptions(lits)
    solver = cp_model.CpSolver()
    # Sufficient assumptions are only reported by a single worker.
    solver.parameters.num_workers = 1
    solver.parameters.max_time_in_seconds = max(0.05, seconds)
    status = solver.solve(built.model)
    if status != cp_model.INFEASIBLE:
        return status, [], solver
    found = set(solver.sufficient_assumptions_for_infeasibility())
    # Only our own literals (presolve has been seen to report others): else keep them all.
    core = [lit for lit in lits if lit.index in found]
    return status, core or list(lits), solver


def _conflicts(problem: Problem, time_limit: float) -> list[str]:
    deadline = time.monotonic() + time_limit
    built = RosterModel(problem, assumptions=True)
    owner = {lit.index: group for group, lit in built.groups.items()}
    # Slots' demands first: dropping them first leaves the lawyers' rules in the core.
    lits = sorted(built.groups.values(),
                  key=lambda lit: (owner[lit.index][0] in ("rest", "nights", "max_shifts"),
                                   owner[lit.index][1]))
    status, core, solver = _check(built, lits, deadline - time.monotonic())
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        roster = built.assignments(solver)
        if not violations(problem, roster):
            return ["未发现冲突: 存在满足全部硬性规则的班表, 只是求解器在限定时间内没有找到;"
                    " 请延长求解时间后重试"]
        return [f"在 {hours_label(round(time_limit, 1))} 秒内没能找出互相冲突的规则;"
                " 请延长求解时间后重试"]
    if status != cp_model.INFEASIBLE:
        return [f"在 {hours_label(round(time_limit, 1))} 秒内既没有排出班表, 也没能找出互相"
                "冲突的规则; 请延长求解时间, 或放宽人数、技能、休息、连续夜班或班次上限等规则"]
    if len(core) < len(lits):  # trust, but verify: the core alone must be infeasible
        status, smaller, _ = _check(built, core, deadline - time.monotonic())
        core = smaller if status == cp_model.INFEASIBLE else list(lits)
    # Deletion: a group whose removal leaves the rest infeasible is not needed.
    needed: set[int] = set()
    minimal = True
    while True:
        candidates = [lit for lit in core if lit.index not in needed]
        if not candidates:
            break
        if time.monotonic() >= deadline:
            minimal = False
            break
        drop = candidates[0]
        trial = [lit for lit in core if lit.index != drop.index]
        status, smaller, _ = _check(built, trial, deadline - time.monotonic())
        if status == cp_model.INFEASIBLE:
            core = smaller
        else:
            needed.add(drop.index)
            minimal = minimal and status != cp_model.UNKNOWN
    return _describe(problem, [owner[lit.index] for lit in core], minimal)


def _describe(problem: Problem, groups: Sequence[Group], minimal: bool) -> list[str]:
    rules = problem.rules
    slots, lawyers = problem.slots, problem.lawyers
    lead = ("每个班次的人数、技能和语言单独看都排得出, 但以下规则合在一起无法同时满足"
            + (" (最小冲突集: 只看这些规则, 去掉任何一条就排得出):" if minimal else ":"))
    reasons = [lead]
    by_kind: dict[str, list[Group]] = defaultdict(list)
    for group in groups:
        by_kind[group[0]].append(group)

    def people(kind: str) -> None:
        members = sorted({g[1] for g in by_kind.get(kind, [])})
        if not members:
            return
        if kind == "rest":
            reasons.append(f"休息规则 (两个班次之间至少休息 {hours_label(rules.min_rest_hours)} "
                           f"小时, 且不能重叠): {_names([lawyers[i] for i in members], 8)}")
            return
        limits: dict[int, list[Lawyer]] = defaultdict(list)
        for i in members:
            lawyer = lawyers[i]
            limit = (night_limit(lawyer, rules) if kind == "nights"
                     else shift_limit(lawyer, rules))
            limits[limit].append(lawyer)
        for limit, who_ in sorted(limits.items()):
            if kind == "nights":
                reasons.append(f"连续夜班上限 (最多连续 {limit} 个夜班): {_names(who_, 8)}")
            else:
                reasons.append(f"班次上限 (本期最多 {limit} 个班次): {_names(who_, 8)}")

    people("nights")
    people("rest")
    people("max_shifts")
    demands = [("coverage", "班次人数"), ("skill", "技能要求"), ("language", "语言要求")]
    for kind, title in demands:
        items = sorted(by_kind.get(kind, []), key=lambda g: (slots[g[1]].start, g[2]))
        if not items:
            continue
        parts = []
        for _, s, key in items:
            slot = slots[s]
            if kind == "coverage":
                parts.append(f"{slot.label()} 需 {slot.need.lawyers} 人")
            elif kind == "skill":
                parts.append(f"{slot.label()} 需 {skill_label(key)} 技能 "
                             f"{slot.need.skills[key]} 人")
            else:
                n = next(v for k, v in slot.need.languages.items() if str(k) == key)
                parts.append(f"{slot.label()} 需会{language_label(key)}的律师 {n} 人")
        days = sorted({slots[s].date for _, s, _ in items})
        span = (f"{day_label(days[0])}至{day_label(days[-1])}" if len(days) > 1
                else day_label(days[0]))
        text = f"{title} ({span}, {len(parts)} 项): " + "、".join(parts[:6])
        reasons.append(text + (f" 等 {len(parts)} 项" if len(parts) > 6 else ""))
    return reasons
