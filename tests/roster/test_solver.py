"""The CP-SAT roster solver and its infeasibility explanations, on the real solver.

Problems are built with model.expand() from small templates (times in Asia/Shanghai) for
December 2026 (the 1st is a Tuesday); time limits are a few seconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from hotline.domain import Language
from hotline.errors import RosterError
from hotline.roster.explain import explain, prechecks
from hotline.roster.model import (
    DAY_KINDS,
    Assignment,
    Lawyer,
    Line,
    Need,
    Period,
    Problem,
    Rules,
    ShiftTemplate,
    Slot,
    Templates,
    expand,
    may_serve,
)
from hotline.roster.rules import check_swap, figures, violations
from hotline.roster.solver import rest_pairs, solve

TZ = ZoneInfo("Asia/Shanghai")
DEC1 = date(2026, 12, 1)
EVERY = DAY_KINDS
LINES = {"main": Line("main", "主线"),
         "yue": Line("yue", "方言席", languages=frozenset({Language.CANTONESE}))}
SKILLS = ("labor", "marriage_family", "contract")
ONE = Need(1)
RULES = Rules()


def days(n: int, first: date = DEC1) -> list[date]:
    return [first + timedelta(days=i) for i in range(n)]


def three_shifts(n: Need = ONE, d: Need = ONE, e: Need = ONE, *,
                 remote: bool = False) -> Templates:
    """N 00–08 (night), D 08–16, E 16–24 on the main line."""
    return Templates(LINES, (
        ShiftTemplate("N", "夜班", "main", time(0), time(8), dict.fromkeys(EVERY, n),
                      night=True, remote=remote),
        ShiftTemplate("D", "白班", "main", time(8), time(16), dict.fromkeys(EVERY, d)),
        ShiftTemplate("E", "晚班", "main", time(16), time(0), dict.fromkeys(EVERY, e)),
    ))


def two_shifts(d: Need = ONE, n: Need = ONE) -> Templates:
    """D 08–20 and N 20–08 (night) on the main line."""
    return Templates(LINES, (
        ShiftTemplate("D", "白班", "main", time(8), time(20), dict.fromkeys(EVERY, d)),
        ShiftTemplate("N", "夜班", "main", time(20), time(8), dict.fromkeys(EVERY, n),
                      night=True),
    ))


def problem_of(templates: Templates, n_days: int, lawyers: Sequence[Lawyer],
               rules: Rules = RULES, **more: object) -> Problem:
    slots = tuple(expand(templates, days(n_days), TZ))
    return Problem(slots, tuple(lawyers), templates.lines, rules, **more)  # type: ignore[arg-type]


def pool(n: int, **fields: object) -> list[Lawyer]:
    return [Lawyer(f"L{i:03d}", f"律师{i}", **fields) for i in range(1, n + 1)]  # type: ignore[arg-type]


def leave(first: date, n_days: int, reason: str = "") -> Period:
    start = datetime.combine(first, time(0), TZ)
    return Period(start, start + timedelta(days=n_days), reason)


def reasons_of(problem: Problem, time_limit: float = 3.0) -> list[str]:
    with pytest.raises(RosterError) as caught:
        solve(problem, time_limit=time_limit)
    assert caught.value.code == "roster.infeasible"
    reasons = list(caught.value.params["reasons"])
    assert reasons and caught.value.params["summary"] == "; ".join(reasons[:3])
    return reasons


# --- random pools: every solved roster keeps every hard rule -------------------------------


@st.composite
def lawyer_pools(draw: st.DrawFn) -> Problem:
    n_days = draw(st.integers(7, 10))
    labor = draw(st.integers(0, 1))
    cantonese = draw(st.integers(0, 1))
    if draw(st.booleans()):
        templates = three_shifts(Need(draw(st.integers(1, 2))),
                                 Need(draw(st.integers(1, 3)), {"labor": labor},
                                      min_proficiency=draw(st.integers(1, 3))),
                                 Need(draw(st.integers(1, 2)),
                                      languages={Language.CANTONESE: cantonese}),
                                 remote=draw(st.booleans()))
    else:
        templates = two_shifts(Need(draw(st.integers(1, 3)), {"labor": labor}),
                               Need(draw(st.integers(1, 2)),
                                    languages={Language.CANTONESE: cantonese}))
    if draw(st.booleans()):  # a Cantonese seat by day on its own line
        templates = Templates(LINES, templates.shifts + (ShiftTemplate(
            "Y", "方言班", "yue", time(9), time(17), dict.fromkeys(EVERY, Need(1))),))
    lawyers = []
    for i in range(draw(st.integers(8, 20))):
        skills = draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), max_size=3))
        periods = tuple(leave(DEC1 + timedelta(days=draw(st.integers(0, n_days - 1))),
                              draw(st.integers(1, 3)))
                        for _ in range(draw(st.integers(0, 2))))
        lawyers.append(Lawyer(
            f"L{i:03d}", f"律师{i}", f"所{i % 3}", skills,
            frozenset({Language.MANDARIN}) | (
                {Language.CANTONESE} if draw(st.integers(0, 3)) == 0 else set()),
            max_shifts=draw(st.none() | st.integers(2, 8)),
            max_consecutive_nights=draw(st.none() | st.integers(0, 3)),
            unavailable=periods,
            off_weekdays=draw(st.frozensets(st.integers(0, 6), max_size=1)),
            prefer=draw(st.frozensets(st.sampled_from(["N", "D", "E", "sat"]), max_size=1)),
            avoid=draw(st.frozensets(st.sampled_from(["N", "sun", "mon"]), max_size=1)),
            remote_night=draw(st.booleans())))
    rules = Rules(min_rest_hours=draw(st.sampled_from([8.0, 11.0, 12.0])),
                  max_consecutive_nights=draw(st.integers(1, 3)),
                  max_shifts=draw(st.integers(4, 8)))
    return problem_of(templates, n_days, lawyers, rules)


@settings(max_examples=15, deadline=None, database=None)
@given(lawyer_pools())
def test_every_solved_roster_keeps_every_hard_rule(problem: Problem) -> None:
    try:
        solution = solve(problem, time_limit=1.5)
    except RosterError as error:
        assert error.code == "roster.infeasible"
        reasons = error.params["reasons"]
        assert reasons and all(isinstance(r, str) and r for r in reasons)
        assert error.params["summary"] == "; ".join(reasons[:3])
        early = prechecks(problem)
        if early:  # found without a search: exactly what solve() reported
            assert reasons == early
        event("infeasible: pre-checks" if early else "infeasible: core")
        return
    event(solution.status)
    assert solution.status in ("optimal", "feasible")
    assert violations(problem, solution.assignments) == []
    assert dict(solution.figures) == figures(problem, solution.assignments)
    assert solution.changes == 0 and solution.seconds > 0
    assert solution.bound <= solution.objective + 1e-6
    lawyers = {x.work_id: x for x in problem.lawyers}
    slots = {s.id: s for s in problem.slots}
    for a in solution.assignments:
        slot, lawyer = slots[a.slot_id], lawyers[a.work_id]
        assert a.remote == (slot.remote and slot.night and lawyer.remote_night)


# --- tiny pools: the solver agrees with brute force ----------------------------------------


@st.composite
def tiny_pools(draw: st.DrawFn) -> Problem:
    n_days = draw(st.integers(2, 3))
    d_need = draw(st.integers(1, 2)) if n_days == 2 else 1
    templates = two_shifts(Need(d_need, {"labor": draw(st.integers(0, 1))}), Need(1))
    lawyers = []
    for i in range(draw(st.integers(3, 4))):
        off = draw(st.none() | st.integers(0, n_days - 1))
        lawyers.append(Lawyer(
            f"L{i}", f"律师{i}", skills={"labor": 1} if draw(st.booleans()) else {},
            max_shifts=draw(st.none() | st.integers(1, 3)),
            max_consecutive_nights=draw(st.none() | st.integers(0, 1)),
            unavailable=(leave(DEC1 + timedelta(days=off), 1),) if off is not None else ()))
    history: tuple[tuple[Slot, str], ...] = ()
    if draw(st.booleans()):  # someone worked the night of 30 November
        night = [s for s in expand(templates, [DEC1 - timedelta(days=1)], TZ) if s.night][0]
        history = ((night, f"L{draw(st.integers(0, len(lawyers) - 1))}"),)
    return problem_of(templates, n_days, lawyers,
                      Rules(max_consecutive_nights=draw(st.integers(1, 2))), history=history)


def every_roster(problem: Problem) -> Iterator[tuple[Assignment, ...]]:
    ids = [x.work_id for x in problem.lawyers]
    choices = [[tuple(Assignment(s.id, w) for w in team)
                for team in itertools.combinations(ids, s.need.lawyers)]
               for s in problem.slots]
    for pick in itertools.product(*choices):
        yield tuple(a for team in pick for a in team)


@settings(max_examples=15, deadline=None, database=None)
@given(tiny_pools())
def test_the_solver_finds_a_roster_exactly_when_one_exists(problem: Problem) -> None:
    exists = any(not violations(problem, r) for r in every_roster(problem))
    try:
        solution = solve(problem, time_limit=3)
    except RosterError as error:
        event("infeasible")
        assert not exists, error.params["reasons"]
        assert error.params["reasons"]
        return
    event("feasible")
    assert exists and violations(problem, solution.assignments) == []


# --- precise explanations ------------------------------------------------------------------


def test_a_slot_whose_only_labour_lawyer_is_on_leave() -> None:
    templates = three_shifts(Need(1, {"labor": 1}))
    wang = Lawyer("L009", "王五", skills={"labor": 3},
                  unavailable=(leave(date(2026, 12, 3), 1, "病假"),))
    problem = problem_of(templates, 3, pool(5) + [wang])
    reasons = reasons_of(problem)
    assert reasons[0] == ("12月3日(周四) 夜班 N [main] 需要 劳动争议 技能 1 人, "
                          "可排律师中没有: 王五(L009) 请假(病假)")
    # Without the leave the same pool is rostered.
    assert solve(replace(problem, lawyers=problem.lawyers[:-1] + (replace(wang, unavailable=()),)),
                 time_limit=2).assignments


def test_too_few_lawyers_names_the_counts() -> None:
    templates = three_shifts(Need(3), Need(5), Need(4))
    reasons = reasons_of(problem_of(templates, 3, pool(10)))
    assert reasons[0].startswith("12月1日(周二) 夜班 N [main]、12月1日(周二) 白班 D [main]、"
                                 "12月1日(周二) 晚班 E [main] 两两之间重叠或休息不足 11 小时")
    assert "共需 12 名律师, 但只有 10 人可排" in reasons[0]
    reasons = reasons_of(problem_of(templates, 3, pool(4)))
    assert reasons[0] == ("12月1日(周二) 白班 D [main] 需要 5 名律师, 只有 4 人可排 "
                          "(共 4 名律师)")
    away = pool(6) + [replace(x, unavailable=(leave(DEC1, 3),)) for x in pool(9)[6:]]
    reasons = reasons_of(problem_of(three_shifts(Need(1), Need(8), Need(1)), 3, away))
    assert reasons[0] == ("12月1日(周二) 白班 D [main] 需要 8 名律师, 只有 6 人可排 (共 9 名律师); "
                          "不可排: 律师7(L007) 请假、律师8(L008) 请假、律师9(L009) 请假")


def test_a_dialect_seat_without_speakers_and_a_remote_night_without_takers() -> None:
    templates = three_shifts(Need(1), Need(1, languages={Language.CANTONESE: 1}), Need(1),
                             remote=True)
    lawyers = pool(6) + [Lawyer("L010", "黄粤", languages=frozenset({Language.CANTONESE}),
                                off_weekdays=frozenset({2}))]
    reasons = reasons_of(problem_of(templates, 2, lawyers))
    assert reasons[0].startswith("12月1日(周二) 夜班 N [main] 需要 1 名律师, 只有 0 人可排")
    assert "律师1(L001) 不接受远程夜班" in reasons[0]
    assert ("12月2日(周三) 白班 D [main] 需要会粤语的律师 1 人, "
            "可排律师中没有: 黄粤(L010) 每周三不值班") in reasons


def test_night_capacity_is_checked_over_the_period() -> None:
    # Two lawyers may work nights, each at most one in a row: 4 of 7 nights each at best...
    # ...but only 3 shifts each in the period: 6 < 7.
    lawyers = pool(6) + [Lawyer(f"R{i}", f"夜{i}", remote_night=True, max_shifts=3,
                                max_consecutive_nights=1) for i in range(2)]
    reasons = reasons_of(problem_of(three_shifts(remote=True), 7, lawyers))
    assert any(r.startswith("本期共有 7 个夜班席位") and "最多只能值 6 个夜班" in r
               for r in reasons), reasons


def test_rest_and_nights_rules_only_the_assumption_core_finds() -> None:
    # Three lawyers, one per 8-hour shift, every day: rest forces E → E and D → D or E, so
    # someone must work every night, which one consecutive night forbids.
    problem = problem_of(three_shifts(), 7, pool(3), Rules(max_consecutive_nights=1))
    assert prechecks(problem) == []
    reasons = reasons_of(problem)
    assert reasons[0].startswith("每个班次的人数、技能和语言单独看都排得出")
    assert "连续夜班上限 (最多连续 1 个夜班): 律师1(L001)、律师2(L002)、律师3(L003)" in reasons
    assert any(r.startswith("休息规则 (两个班次之间至少休息 11 小时") for r in reasons)
    assert any(r.startswith("班次人数") for r in reasons)
    # The rules it names are the culprits: allow a week of nights and it is rostered.
    relaxed = replace(problem, rules=Rules(max_consecutive_nights=7))
    assert violations(relaxed, solve(relaxed, time_limit=2).assignments) == []
    # Day and night of 12 hours with two lawyers: the same conflict, found the same way.
    problem = problem_of(two_shifts(), 5, pool(2), Rules(max_consecutive_nights=1))
    assert prechecks(problem) == []
    assert "连续夜班上限 (最多连续 1 个夜班): 律师1(L001)、律师2(L002)" in reasons_of(problem)


def test_nights_of_the_previous_month_count_in_the_core() -> None:
    # Only 夜1 may work the remote night of 1 December, after three nights in November.
    lawyers = pool(4) + [Lawyer("R1", "夜1", remote_night=True)]
    templates = three_shifts(remote=True)
    history = tuple((s, "R1") for s in expand(templates, days(3, date(2026, 11, 28)), TZ)
                    if s.night)
    problem = problem_of(templates, 1, lawyers, history=history)
    assert prechecks(problem) == []
    reasons = reasons_of(problem)
    assert "连续夜班上限 (最多连续 3 个夜班): 夜1(R1)" in reasons
    assert reasons[-1] == "班次人数 (12月1日, 1 项): 12月1日(周二) 夜班 N [main] 需 1 人"


def test_explain_on_a_problem_that_has_a_roster() -> None:
    [reason] = explain(problem_of(three_shifts(), 3, pool(6)), time_limit=5)
    assert reason.startswith("未发现冲突")


# --- the solver's model and goals ----------------------------------------------------------


def test_rest_pairs_compare_only_nearby_slots() -> None:
    slots = expand(three_shifts(), days(31), TZ)
    pairs = rest_pairs(slots, 11)
    # Per day: N–D, N–E, D–E, D–next N, E–next N, E–next D.
    assert len(pairs) == 31 * 6 - 3
    assert all(slots[j].start - slots[i].start < timedelta(hours=35) for i, j in pairs)


def test_balanced_pool_shares_nights_weekends_and_shifts_evenly() -> None:
    lawyers = [replace(x, skills={"labor": 3}, firm=f"所{i % 3}")
               for i, x in enumerate(pool(12))]
    lawyers[0] = replace(lawyers[0], avoid=frozenset({"sun"}))
    lawyers[1] = replace(lawyers[1], prefer=frozenset({"D"}))
    problem = problem_of(three_shifts(Need(1), Need(2, {"labor": 1}), Need(1)), 14, lawyers)
    solution = solve(problem, time_limit=4)
    assert solution.status == "optimal"  # proven in well under a second
    assert violations(problem, solution.assignments) == []
    got = solution.figures
    assert got["nights_spread"] <= 1
    assert got["shifts_spread"] <= 1 and got["weekends_spread"] <= 1
    assert got["avoided_hits"] == 0
    assert got["firm_share_deviation"] <= 100 / 56  # within one shift of 56
    # 律师2 likes D: all theirs but the one night the nights' spread asks of everyone.
    liked = [a.slot_id[-1] for a in solution.assignments if a.work_id == "L002"]
    assert sorted(set(liked)) == ["D", "N"] and liked.count("N") == 1, (solution.status, liked)


def test_fixed_assignments_and_history_are_kept() -> None:
    lawyers = pool(6)
    templates = three_shifts()
    problem = problem_of(templates, 4, lawyers)
    d1, n2 = f"{DEC1}/main/D", f"{DEC1 + timedelta(days=1)}/main/N"
    nov = expand(templates, days(3, date(2026, 11, 28)), TZ)
    history = tuple((s, "L001") for s in nov if s.night) + (
        (next(s for s in nov if s.date.day == 30 and s.code == "E"), "L002"),)
    fixed = (Assignment(d1, "L003"), Assignment(n2, "L004"))
    problem = replace(problem, fixed=fixed, history=history)
    solution = solve(problem, time_limit=2)
    assert violations(problem, solution.assignments) == []
    assert set(fixed) <= set(solution.assignments)
    on = {(a.slot_id, a.work_id) for a in solution.assignments}
    assert sum(1 for s, _ in on if s == d1) == 1
    assert (f"{DEC1}/main/N", "L001") not in on  # a fourth night in a row
    assert not {(f"{DEC1}/main/N", "L002"), (d1, "L002")} & on  # 8 hours after E on the 30th


def test_remote_nights_go_to_lawyers_who_take_them() -> None:
    lawyers = pool(6) + [Lawyer(f"R{i}", f"夜{i}", remote_night=True) for i in range(3)]
    problem = problem_of(three_shifts(remote=True), 6, lawyers)
    solution = solve(problem, time_limit=2)
    nights = [a for a in solution.assignments if a.slot_id.endswith("/N")]
    assert len(nights) == 6 and all(a.work_id.startswith("R") and a.remote for a in nights)
    assert not any(a.remote for a in solution.assignments if not a.slot_id.endswith("/N"))
    assert solution.figures["nights_spread"] == 0  # 2 nights each for the three who may


# --- re-plan -------------------------------------------------------------------------------


def test_replan_after_illness_changes_only_the_ill_lawyers_days() -> None:
    lawyers = [replace(x, skills={"labor": 2} if i % 2 else {}) for i, x in enumerate(pool(12))]
    templates = three_shifts(Need(1), Need(2, {"labor": 1}), Need(1))
    problem = problem_of(templates, 28, lawyers)
    first = solve(problem, time_limit=5)
    assert violations(problem, first.assignments) == []
    ill_days = days(3, date(2026, 12, 10))
    slots = {s.id: s for s in problem.slots}
    ill = max(lawyers, key=lambda x: sum(1 for a in first.assignments if a.work_id == x.work_id
                                         and slots[a.slot_id].date in ill_days))
    lost = {a.slot_id for a in first.assignments
            if a.work_id == ill.work_id and slots[a.slot_id].date in ill_days}
    assert lost
    sick = replace(ill, unavailable=(leave(ill_days[0], 3, "病假"),))
    replan = replace(problem, previous=first.assignments,
                     lawyers=tuple(sick if x is ill else x for x in lawyers))
    second = solve(replan, time_limit=5)
    assert second.status == "optimal"
    assert violations(replan, second.assignments) == []
    before = {(a.slot_id, a.work_id) for a in first.assignments}
    after = {(a.slot_id, a.work_id) for a in second.assignments}
    # Each lost shift goes to one colleague: 2 changes per shift, all on the ill days.
    assert second.changes == len(before ^ after) == 2 * len(lost)
    assert {s for s, _ in before ^ after} == lost
    assert all(may_serve(sick, slots[s], None) == "roster.unavailable" for s in lost)


def test_swaps_on_a_solved_roster() -> None:
    lawyers = pool(8)
    lawyers[7] = replace(lawyers[7], unavailable=(leave(date(2026, 12, 2), 1),))
    problem = problem_of(three_shifts(), 4, lawyers)
    roster = solve(problem, time_limit=2).assignments
    working = {(a.slot_id, a.work_id) for a in roster}
    slots = {s.id: s for s in problem.slots}

    def works_near(work_id: str, slot: Slot) -> bool:
        return any(w == work_id and abs(slots[s].start - slot.start) < timedelta(hours=24)
                   for s, w in working)

    give = next(a for a in roster if slots[a.slot_id].date == date(2026, 12, 2))
    slot = slots[give.slot_id]
    free = next(x.work_id for x in lawyers[:7] if not works_near(x.work_id, slot))
    after = check_swap(problem, roster, give, free)
    assert violations(problem, after) == [] and Assignment(give.slot_id, free) in after
    with pytest.raises(RosterError) as caught:
        check_swap(problem, roster, give, "L008")
    assert f"律师8(L008) 不能值 {slot.label()}: 请假" in caught.value.params["reasons"]
    busy = next(w for s, w in working if w != give.work_id and slots[s] is not slot
                and timedelta(0) < abs(slots[s].start - slot.start) < timedelta(hours=16))
    with pytest.raises(RosterError) as caught:
        check_swap(problem, roster, give, busy)
    assert any("休息不足 11 小时" in r for r in caught.value.params["reasons"])
