"""The roster's hard rules, figures and swaps (hotline/roster/rules.py), without the solver.

One hand-made valid roster over two days (Tue 1 and Wed 2 December 2026, shifts N 00–08,
D 08–16 needing two lawyers with a labour skill ≥ 2, E 16–24 needing a Cantonese speaker),
then each rule broken on purpose.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.domain import Language
from hotline.errors import RosterError
from hotline.roster.model import (
    DAY_KINDS,
    Assignment,
    Lawyer,
    Line,
    Need,
    Period,
    Problem,
    ShiftTemplate,
    Slot,
    Templates,
    expand,
)
from hotline.roster.rules import check_swap, figures, swap, violations

TZ = ZoneInfo("Asia/Shanghai")
DAYS = [date(2026, 12, 1), date(2026, 12, 2)]
LINES = {"main": Line("main", "主线"), "sme": Line("sme", "中小企业专线", min_practice_years=3)}


def templates(*, remote_nights: bool = False) -> Templates:
    every = DAY_KINDS
    return Templates(LINES, (
        ShiftTemplate("N", "夜班", "main", time(0), time(8), dict.fromkeys(every, Need(1)),
                      night=True, remote=remote_nights),
        ShiftTemplate("D", "白班", "main", time(8), time(16),
                      dict.fromkeys(every, Need(2, {"labor": 1}, min_proficiency=2))),
        ShiftTemplate("E", "晚班", "main", time(16), time(0),
                      dict.fromkeys(every, Need(1, languages={Language.CANTONESE: 1}))),
    ))


SLOTS = tuple(expand(templates(), DAYS, TZ))
N1, D1, E1, N2, D2, E2 = (s.id for s in SLOTS)
CANTONESE = frozenset({Language.MANDARIN, Language.CANTONESE})
ZHANG = Lawyer("L001", "张三", "甲所", {"labor": 4}, prefer=frozenset({"D"}))
LI = Lawyer("L002", "李四", "甲所", {"marriage_family": 3})
WANG = Lawyer("L003", "王五", "乙所", languages=CANTONESE, avoid=frozenset({"wed"}))
ZHAO = Lawyer("L004", "赵六", "乙所", {"labor": 1})
QIAN = Lawyer("L005", "钱七", "乙所", {"labor": 1}, languages=CANTONESE)
SUN = Lawyer("L006", "孙八", "乙所", {"labor": 5}, unavailable=(
    Period(datetime(2026, 12, 2, tzinfo=TZ), datetime(2026, 12, 3, tzinfo=TZ)),))
LAWYERS = (ZHANG, LI, WANG, ZHAO, QIAN, SUN)
PROBLEM = Problem(SLOTS, LAWYERS, LINES)
ROSTER = (
    Assignment(N1, "L002"), Assignment(D1, "L001"), Assignment(D1, "L004"),
    Assignment(E1, "L003"),
    Assignment(N2, "L005"), Assignment(D2, "L001"), Assignment(D2, "L002"),
    Assignment(E2, "L003"),
)


def with_lawyer(problem: Problem, lawyer: Lawyer) -> Problem:
    return replace(problem, lawyers=tuple(lawyer if x.work_id == lawyer.work_id else x
                                          for x in problem.lawyers))


def moved(roster: tuple[Assignment, ...], slot_id: str, old: str | None,
          new: str | None) -> tuple[Assignment, ...]:
    out = [a for a in roster if not (a.slot_id == slot_id and a.work_id == old)]
    return tuple(out + ([Assignment(slot_id, new)] if new else []))


def codes(problem: Problem, roster: tuple[Assignment, ...]) -> list[str]:
    return sorted(v.code for v in violations(problem, roster))


def label(slot_id: str) -> str:
    return next(s for s in SLOTS if s.id == slot_id).label()


# --- violations ----------------------------------------------------------------------------


def test_the_hand_made_roster_is_valid() -> None:
    assert violations(PROBLEM, ROSTER) == []
    assert label(D1) == "12月1日(周二) 白班 D [main]"


def test_missing_and_extra_heads() -> None:
    [v] = violations(PROBLEM, moved(ROSTER, D1, "L004", None))
    assert (v.code, v.slot_id) == ("roster.coverage", D1)
    assert v.message == "12月1日(周二) 白班 D [main] 需要 2 名律师, 实际只排了 1 人"
    [v] = violations(PROBLEM, moved(ROSTER, N1, None, "L006"))
    assert (v.code, v.slot_id) == ("roster.overstaffed", N1)
    assert "只需要 1 名律师, 实际排了 2 人" in v.message


def test_skill_minimum_counts_only_proficient_lawyers() -> None:
    # 赵六's labour skill is 1, below the shift's minimum proficiency of 2.
    [v] = violations(PROBLEM, moved(ROSTER, D2, "L001", "L004"))
    assert (v.code, v.slot_id) == ("roster.skill", D2)
    assert v.message == ("12月2日(周三) 白班 D [main] 需要 劳动争议 技能(熟练度≥2) 1 人, "
                         "实际只有 0 人")


def test_language_minimum() -> None:
    [v] = violations(PROBLEM, moved(ROSTER, E2, "L003", "L004"))
    assert (v.code, v.slot_id) == ("roster.language", E2)
    assert "需要会粤语的律师 1 人, 实际只有 0 人" in v.message


def test_rest_between_shifts_of_one_lawyer() -> None:
    # 王五 works E1 (16–24), then N2 (00–08, no rest) and E2 (16–24, 8 hours' rest).
    roster = moved(ROSTER, N2, "L005", "L003")
    found = violations(PROBLEM, roster)
    assert [v.code for v in found] == ["roster.rest", "roster.rest"]
    assert {v.work_id for v in found} == {"L003"}
    assert found[0].message == ("王五(L003) 的 12月1日(周二) 晚班 E [main] 与 "
                                "12月2日(周三) 夜班 N [main] 之间休息不足 11 小时")
    eight = replace(PROBLEM, rules=replace(PROBLEM.rules, min_rest_hours=8))
    assert [v.slot_id for v in violations(eight, roster)] == [N2]  # E1 → N2 still has none


def test_rest_and_overlap_with_the_previous_period() -> None:
    late = Slot(date(2026, 11, 30), "main", "X", "加班", datetime(2026, 11, 30, 20, tzinfo=TZ),
                datetime(2026, 12, 1, 1, tzinfo=TZ), Need(1))
    [v] = violations(replace(PROBLEM, history=((late, "L002"),)), ROSTER)
    assert (v.code, v.work_id, v.slot_id) == ("roster.rest", "L002", N1)
    assert "时间重叠" in v.message and "11月30日(周一) 加班 X [main]" in v.message
    # History alone (both slots already worked) is not this roster's fault.
    earlier = replace(late, start=late.start - timedelta(hours=2))
    assert violations(replace(PROBLEM, history=((late, "L009"), (earlier, "L009"))),
                      ROSTER) == []


def test_consecutive_nights_count_the_previous_period() -> None:
    nights = [s for s in expand(templates(), [date(2026, 11, d) for d in (28, 29, 30)], TZ)
              if s.night]
    history = tuple((s, "L002") for s in nights)
    [v] = violations(replace(PROBLEM, history=history), ROSTER)
    assert (v.code, v.work_id) == ("roster.nights", "L002")
    assert v.message == "李四(L002) 从 11月28日 到 12月1日 连续值 4 个夜班, 超过连续夜班上限 3 个"
    assert violations(with_lawyer(replace(PROBLEM, history=history),
                                  replace(LI, max_consecutive_nights=4)), ROSTER) == []
    # A long run that ended before the period, with a night off since, is no violation.
    assert violations(replace(PROBLEM, history=history[:2]), ROSTER) == []


def test_max_shifts() -> None:
    [v] = violations(with_lawyer(PROBLEM, replace(ZHANG, max_shifts=1)), ROSTER)
    assert (v.code, v.work_id) == ("roster.max_shifts", "L001")
    assert v.message == "张三(L001) 本期排了 2 个班次, 超过上限 1 个"
    rules = replace(PROBLEM.rules, max_shifts=1)
    assert codes(replace(PROBLEM, rules=rules), ROSTER) == ["roster.max_shifts"] * 3


def test_leave_days_off_lines_and_remote_nights() -> None:
    [v] = violations(PROBLEM, moved(ROSTER, D2, "L002", "L006"))
    assert (v.code, v.slot_id, v.work_id) == ("roster.unavailable", D2, "L006")
    assert v.message == "孙八(L006) 不能值 12月2日(周三) 白班 D [main]: 请假"
    off = with_lawyer(PROBLEM, replace(WANG, off_weekdays=frozenset({2})))
    [v] = violations(off, ROSTER)
    assert (v.code, v.slot_id) == ("roster.unavailable", E2)
    assert v.message.endswith("每周三不值班")
    elsewhere = with_lawyer(PROBLEM, replace(ZHAO, lines=frozenset({"sme"})))
    [v] = violations(elsewhere, ROSTER)
    assert (v.code, v.work_id) == ("roster.line", "L004")
    assert v.message.endswith("不在本线路")
    remote = replace(PROBLEM, slots=tuple(expand(templates(remote_nights=True), DAYS, TZ)))
    assert codes(remote, ROSTER) == ["roster.remote", "roster.remote"]
    remote = with_lawyer(with_lawyer(remote, replace(LI, remote_night=True)),
                         replace(QIAN, remote_night=True))
    assert violations(remote, ROSTER) == []


def test_unknown_and_duplicate_assignments() -> None:
    roster = ROSTER + (Assignment("2026-12-09/main/N", "L001"), Assignment(D1, "L999"),
                       Assignment(D1, "L001"))
    found = violations(PROBLEM, roster)
    assert [v.code for v in found] == ["roster.unknown", "roster.unknown", "roster.duplicate"]
    assert "2026-12-09/main/N" in found[0].message and "L999" in found[1].message
    assert found[2].message == "张三(L001) 在 12月1日(周二) 白班 D [main] 重复排了 2 次"


# --- figures -------------------------------------------------------------------------------


def test_figures_of_the_hand_made_roster() -> None:
    got = figures(PROBLEM, ROSTER)
    # Shifts: 张三 2, 李四 2, 王五 2, 赵六 1, 钱七 1, 孙八 0 (he may work on the 1st).
    assert (got["shifts_min"], got["shifts_max"], got["shifts_spread"]) == (0, 2, 2)
    assert (got["nights_min"], got["nights_max"], got["nights_spread"]) == (0, 1, 1)
    assert got["weekends_spread"] == 0  # no weekend shift in the period
    # 甲所: 2 of 6 lawyers (33.3 %) but 4 of 8 shifts (50 %).
    assert got["firm_share_deviation"] == pytest.approx(16.67)
    assert got["preferred_hits"] == 2  # 张三 likes D
    assert got["avoided_hits"] == 1  # 王五 avoids Wednesdays: E on the 2nd
    assert got["continuity_changes"] == 1  # 李四: N on the 1st, D on the 2nd
    assert got["assignments"] == 8


# --- swaps ---------------------------------------------------------------------------------


def test_a_valid_handover_and_a_valid_exchange() -> None:
    after = check_swap(PROBLEM, ROSTER, Assignment(D2, "L002"), "L004")
    assert Assignment(D2, "L004") in after and Assignment(D2, "L002") not in after
    assert len(after) == len(ROSTER) and violations(PROBLEM, after) == []
    # 赵六 gives D on the 1st to 钱七 and takes 钱七's night on the 2nd.
    after = check_swap(PROBLEM, ROSTER, Assignment(D1, "L004"), "L005", Assignment(N2, "L005"))
    assert {Assignment(D1, "L005"), Assignment(N2, "L004")} <= set(after)
    assert violations(PROBLEM, after) == []


def test_a_swap_to_a_colleague_on_leave_is_refused() -> None:
    with pytest.raises(RosterError) as caught:
        check_swap(PROBLEM, ROSTER, Assignment(D2, "L002"), "L006")
    assert caught.value.code == "roster.swap_invalid"
    assert caught.value.params["reasons"] == [
        "孙八(L006) 不能值 12月2日(周三) 白班 D [main]: 请假"]
    assert "请假" in caught.value.params["summary"]


def test_a_swap_breaking_rest_or_skills_is_refused() -> None:
    with pytest.raises(RosterError) as caught:
        check_swap(PROBLEM, ROSTER, Assignment(D1, "L004"), "L002")  # 李四 has N1 before
    assert caught.value.params["reasons"] == [
        "李四(L002) 的 12月1日(周二) 夜班 N [main] 与 12月1日(周二) 白班 D [main] 之间"
        "休息不足 11 小时"]
    with pytest.raises(RosterError) as caught:
        check_swap(PROBLEM, ROSTER, Assignment(D2, "L001"), "L004")
    assert [r.split(" 需要")[0] for r in caught.value.params["reasons"]] == [label(D2)]
    assert "劳动争议" in caught.value.params["summary"]


def test_old_unrelated_violations_do_not_block_a_swap() -> None:
    short = moved(ROSTER, E1, "L003", None)  # E on the 1st is unstaffed
    assert codes(PROBLEM, short) == ["roster.coverage", "roster.language"]
    after = check_swap(PROBLEM, short, Assignment(D2, "L002"), "L004")
    assert codes(PROBLEM, after) == ["roster.coverage", "roster.language"]


def test_swaps_of_the_wrong_shape() -> None:
    cases = [
        (Assignment(D1, "L002"), "L004", None, "没有 李四(L002) 的班"),
        (Assignment(D1, "L001"), "L001", None, "不能把班次换给自己"),
        (Assignment(D1, "L001"), "L004", None, "赵六(L004) 已经在"),
        (Assignment(D1, "L004"), "L005", Assignment(N2, "L002"), "是 李四(L002) 的班"),
        (Assignment(D1, "L004"), "L005", Assignment(N1, "L005"), "没有 钱七(L005) 的班"),
        (Assignment(D1, "L004"), "L009", None, "没有工号为 L009 的律师"),
    ]
    for give, to, take, words in cases:
        with pytest.raises(RosterError) as caught:
            check_swap(PROBLEM, ROSTER, give, to, take)
        assert caught.value.code == "roster.swap_invalid"
        assert words in caught.value.params["summary"], (give, to, take)
    with pytest.raises(RosterError) as caught:
        swap(ROSTER, Assignment(D1, "L002"), "L004")
    assert caught.value.code == "roster.swap_invalid"
    assert caught.value.params["reasons"] == [f"班表中 {D1} 没有 L002 的班, 无法让出",
                                              f"L004 已经在 {D1} 值班"]


def test_a_swap_onto_a_remote_night_sets_the_remote_flag() -> None:
    slots = tuple(expand(templates(remote_nights=True), DAYS, TZ))
    problem = replace(PROBLEM, slots=slots, lawyers=tuple(
        replace(x, remote_night=x.work_id in ("L002", "L005", "L006")) for x in LAWYERS))
    roster = tuple(replace(a, remote=a.slot_id in (N1, N2)) for a in ROSTER)
    assert violations(problem, roster) == []
    after = check_swap(problem, roster, Assignment(N1, "L002", True), "L006")
    assert Assignment(N1, "L006", True) in after


@settings(max_examples=50, deadline=None, database=None)
@given(st.integers(0, len(ROSTER) - 1), st.sampled_from([x.work_id for x in LAWYERS]))
def test_a_swap_and_its_reverse_give_back_the_roster(index: int, to: str) -> None:
    give = ROSTER[index]
    if to == give.work_id or Assignment(give.slot_id, to) in ROSTER:
        with pytest.raises(RosterError):
            swap(ROSTER, give, to)
        return
    after = swap(ROSTER, give, to)
    assert sorted(a.slot_id for a in after) == sorted(a.slot_id for a in ROSTER)
    assert swap(after, Assignment(give.slot_id, to), give.work_id) == ROSTER
