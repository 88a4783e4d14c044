"""The roster's input files: shift templates and lawyers (YAML and CSV), shipped and broken."""

from __future__ import annotations

import textwrap
from collections import Counter
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from hotline.domain import Language
from hotline.errors import RosterError
from hotline.ivr.calendar import HolidayCalendar
from hotline.roster.files import load_lawyers, load_templates
from hotline.roster.model import Lawyer, Need, Slot, Templates, expand, may_serve, month_days

ROOT = Path(__file__).resolve().parents[2]
SHIFTS = ROOT / "roster" / "shifts.yaml"
LAWYERS = ROOT / "roster" / "lawyers.example.yaml"
TZ = ZoneInfo("Asia/Shanghai")
TODAY = date(2026, 11, 20)


@pytest.fixture(scope="module")
def china() -> HolidayCalendar:
    # As hotline.roster.planning.holiday_calendar reads it.
    path = ROOT / "ivr_flows" / "calendars" / "china.yaml"
    return HolidayCalendar.from_data(yaml.safe_load(path.read_text(encoding="utf-8")), "china")


@pytest.fixture(scope="module")
def templates() -> Templates:
    return load_templates(SHIFTS)


@pytest.fixture(scope="module")
def lawyers(templates: Templates) -> list[Lawyer]:
    return load_lawyers(LAWYERS, tz=TZ, today=TODAY, templates=templates)


def write(tmp_path: Path, text: str, name: str = "shifts.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(call, *args, **kwargs) -> list[str]:
    with pytest.raises(RosterError) as info:
        call(*args, **kwargs)
    error = info.value
    assert error.params["count"] == len(error.params["problems"])
    return list(error.params["problems"])


# --- the shipped files -------------------------------------------------------------------------


def test_shipped_templates_describe_the_three_lines(templates: Templates) -> None:
    assert {code: (line.name, line.languages, line.min_practice_years)
            for code, line in templates.lines.items()} == {
        "main": ("主线", frozenset(), 0),
        "dialect": ("方言席", frozenset({Language.CANTONESE, Language.HAKKA}), 0),
        "sme": ("中小企业专线", frozenset(), 3),
    }
    shifts = {(s.line, s.code): s for s in templates.shifts}
    assert sorted(shifts) == [("dialect", "C"), ("main", "D"), ("main", "E"), ("main", "N"),
                              ("sme", "S")]
    night, day, evening = shifts["main", "N"], shifts["main", "D"], shifts["main", "E"]
    assert (night.start, night.end, night.night, night.remote) == (time(0), time(8), True, True)
    assert (day.start, day.end, day.night, day.remote) == (time(8), time(16), False, False)
    assert (evening.start, evening.end, evening.hours) == (time(16), time(0), 8.0)
    assert day.needs["workday"] == Need(4, {"labor": 1, "marriage_family": 1, "contract": 1},
                                        {}, 3)
    # Fewer at weekends, fewer still on holidays and at night.
    assert day.needs["weekend"].lawyers < day.needs["workday"].lawyers
    assert day.needs["holiday"].lawyers < day.needs["weekend"].lawyers
    assert night.needs["workday"].lawyers < day.needs["holiday"].lawyers + 1
    assert shifts["sme", "S"].needs.keys() == {"workday"}
    assert shifts["sme", "S"].needs["workday"].skills == {"sme": 1}
    assert shifts["dialect", "C"].needs.keys() == {"workday", "weekend", "holiday"}


def test_shipped_templates_expand_for_december_2026(templates: Templates,
                                                    china: HolidayCalendar) -> None:
    slots = expand(templates, month_days(2026, 12), TZ, china)
    days = Counter(s.kind for s in slots if (s.line, s.code) == ("main", "D"))
    # No public holiday in December 2026 (元旦 2027 is not in the calendar yet).
    assert days == {"workday": 23, "weekend": 8}
    per_code = Counter(s.code for s in slots)
    assert per_code == {"N": 31, "D": 31, "E": 31, "C": 31, "S": 23}
    assert sum(s.need.lawyers for s in slots) == 2 * 31 + (4 * 23 + 3 * 8) + (3 * 23 + 2 * 8) \
        + 31 + 23 == 317
    first = slots[0]
    assert (first.id, first.start, first.end, first.night, first.remote) == (
        "2026-12-01/main/N", datetime(2026, 12, 1, 0, 0, tzinfo=TZ),
        datetime(2026, 12, 1, 8, 0, tzinfo=TZ), True, True)
    evening = next(s for s in slots if s.id == "2026-12-31/main/E")
    assert evening.end == datetime(2027, 1, 1, 0, 0, tzinfo=TZ)
    saturday = [s for s in slots if s.date == date(2026, 12, 5)]
    assert {s.code: s.need.lawyers for s in saturday} == {"N": 2, "D": 3, "E": 2, "C": 1}


def test_shipped_templates_follow_the_holiday_calendar(templates: Templates,
                                                       china: HolidayCalendar) -> None:
    slots = expand(templates, month_days(2026, 10), TZ, china)
    on = {(s.date, s.code): s for s in slots}
    national_day = date(2026, 10, 1)
    assert on[national_day, "D"].kind == "holiday"
    assert on[national_day, "D"].need.lawyers == 2
    assert (national_day, "S") not in on  # the SME line is closed on holidays
    # Saturday 10 October is a working day (调休上班): the SME line opens.
    assert on[date(2026, 10, 10), "S"].kind == "workday"
    assert (date(2026, 10, 11), "S") not in on


def test_shipped_lawyers_load(lawyers: list[Lawyer]) -> None:
    assert len(lawyers) == 30
    assert len({lawyer.work_id for lawyer in lawyers}) == 30
    assert 4 <= len({lawyer.firm for lawyer in lawyers}) <= 5
    assert all(16 <= (lawyer.max_shifts or 0) <= 18 for lawyer in lawyers)
    by_id = {lawyer.work_id: lawyer for lawyer in lawyers}
    zhang = by_id["L1001"]
    assert (zhang.name, zhang.firm) == ("张明华", "湖北楚天明理律师事务所")
    assert zhang.skills == {"labor": 5, "legal_aid": 4, "general": 3}
    assert zhang.languages == {Language.MANDARIN, Language.HUBEI}
    assert (zhang.max_shifts, zhang.max_consecutive_nights, zhang.remote_night) == (16, 2, True)
    assert zhang.practice_years == pytest.approx((TODAY - date(2012, 7, 1)).days / 365.2425,
                                                 abs=0.01)
    assert by_id["L1002"].languages == {Language.MANDARIN}  # the default
    assert (by_id["L1002"].prefer, by_id["L1002"].avoid) == ({"D"}, {"sun"})
    assert by_id["L1010"].off_weekdays == {5}
    assert by_id["L1019"].lines == {"dialect", "sme"}
    huang = by_id["L1006"].unavailable
    assert [(p.start, p.end, p.reason) for p in huang] == [
        (datetime(2026, 12, 10, tzinfo=TZ), datetime(2026, 12, 13, tzinfo=TZ), "开庭")]
    hu = by_id["L1027"].unavailable
    assert [(p.start, p.end) for p in hu] == [
        (datetime(2026, 12, 18, tzinfo=TZ), datetime(2026, 12, 19, tzinfo=TZ))]


def test_shipped_lawyers_can_staff_december_2026(templates: Templates, lawyers: list[Lawyer],
                                                 china: HolidayCalendar) -> None:
    """The arithmetic a solver needs: every seat, skill and dialect has enough people."""
    slots = expand(templates, month_days(2026, 12), TZ, china)
    assert sum(s.need.lawyers for s in slots) <= 0.7 * sum(lw.max_shifts or 0 for lw in lawyers)

    def eligible(slot: Slot) -> list[Lawyer]:
        return [lw for lw in lawyers if may_serve(lw, slot, templates.lines[slot.line]) is None]

    for slot in slots:
        people = eligible(slot)
        # At least twice the head-count, so rest and night limits leave room.
        assert len(people) >= 2 * slot.need.lawyers, slot.id
        for skill, count in slot.need.skills.items():
            able = [lw for lw in people if lw.skills.get(skill, 0) >= slot.need.min_proficiency]
            assert len(able) >= 2 * count, (slot.id, skill)
        for language, count in slot.need.languages.items():
            assert len([lw for lw in people if language in lw.languages]) >= 2 * count
    # Nights are remote: enough remote lawyers for 62 night seats at ≤ 2-3 nights in a row.
    remote = [lw for lw in lawyers if lw.remote_night]
    night_seats = sum(s.need.lawyers for s in slots if s.night)
    assert night_seats == 62 and len(remote) * 8 >= night_seats
    # Seats per line against the monthly limits of everyone who may serve on it.
    for line in templates.lines:
        mine = [s for s in slots if s.line == line]
        people = {lw.work_id: lw for s in mine for lw in eligible(s)}
        seats = sum(s.need.lawyers for s in mine)
        assert sum(lw.max_shifts or 0 for lw in people.values()) >= 1.5 * seats, line


# --- templates: what is accepted ---------------------------------------------------------------


def test_templates_options(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        lines:
          main: 主线
          dialect: {name: 方言席, languages: [粤语, hakka]}
        shifts:
          - {code: L, name: 长夜班, line: main, start: "20:00", end: "08:00", night: true,
             need: {lawyers: 1, skills: {family: 1, 劳动争议: 1}}}
          - code: D
            name: 白班
            line: main
            start: "08:00"
            end: "20:00"
            weekdays: [mon-fri, 周六]
            need:
              workday: {lawyers: 2, languages: {cantonese: 1}, min_proficiency: 4}
              holiday: null
          - {code: A, name: 全天, line: dialect, start: "09:00", end: "09:00",
             need: {weekend: {lawyers: 1}}}
          - {code: B, name: 晚, line: dialect, start: "09:00", end: "24:00",
             need: {workday: {lawyers: 1}}}
        """)
    t = load_templates(path)
    assert t.lines["main"].name == "主线"
    assert t.lines["dialect"].languages == {Language.CANTONESE, Language.HAKKA}
    long_night = t.shift("L", "main")
    assert long_night is not None and long_night.hours == 12
    assert long_night.needs["holiday"].skills == {"marriage_family": 1, "labor": 1}
    day = t.shift("D", "main")
    assert day is not None
    assert day.weekdays == {0, 1, 2, 3, 4, 5}
    assert day.needs == {"workday": Need(2, {}, {Language.CANTONESE: 1}, 4)}
    whole = t.shift("A", "dialect")
    assert whole is not None and whole.hours == 24
    evening = t.shift("B", "dialect")
    assert evening is not None and evening.end == time(0)
    # The 20:00–08:00 night belongs to the day it starts and ends the next morning.
    slots = expand(t, [date(2026, 12, 3)], TZ)
    night = next(s for s in slots if s.code == "L")
    assert (night.start, night.end) == (datetime(2026, 12, 3, 20, tzinfo=TZ),
                                        datetime(2026, 12, 4, 8, tzinfo=TZ))


# --- templates: every kind of mistake, each at its line ----------------------------------------

HEAD = """\
lines:
  main: {name: 主线}
  dialect: {name: 方言席, languages: [cantonese]}
shifts:
"""

BROKEN_TEMPLATES = [
    # (what, shifts text appended to HEAD (line 5 on), [(line, expected words), ...])
    ("unknown key with a hint",
     """\
  - {code: N, name: 夜班, line: main, start: "00:00", end: "08:00", nigth: true,
     need: {lawyers: 1}}
""", [(5, "未知的键 'nigth', 是否想写 'night'?")]),
    ("bad time",
     """\
  - {code: D, name: 白班, line: main, start: "25:00", end: "16:00", need: {lawyers: 1}}
""", [(5, "start 时间 '25:00' 无效")]),
    ("unquoted time read as a number",
     """\
  - code: D
    name: 白班
    line: main
    start: "08:00"
    end: 16:00
    need: {lawyers: 1}
""", [(9, '请写成 "16:00"')]),
    ("24:00 as a start",
     """\
  - {code: D, name: 白班, line: main, start: "24:00", end: "08:00", need: {lawyers: 1}}
""", [(5, "00:00 至 23:59")]),
    ("unknown line",
     """\
  - {code: D, name: 白班, line: mian, start: "08:00", end: "16:00", need: {lawyers: 1}}
""", [(5, "没有线路 'mian', 是否想写 'main'?")]),
    ("unknown language in a need",
     """\
  - code: D
    name: 白班
    line: main
    start: "08:00"
    end: "16:00"
    need:
      lawyers: 2
      languages: {cantonse: 1}
""", [(12, "未知语言 'cantonse', 是否想写 'cantonese'?")]),
    ("unknown skill",
     """\
  - code: D
    name: 白班
    line: main
    start: "08:00"
    end: "16:00"
    need: {lawyers: 2, skills: {labour: 1}}
""", [(10, "未知技能 'labour', 是否想写 'labor'?")]),
    ("duplicate code in a line",
     """\
  - {code: D, name: 白班, line: main, start: "08:00", end: "16:00", need: {lawyers: 1}}
  - {code: D, name: 白班, line: dialect, start: "08:00", end: "16:00", need: {lawyers: 1}}
  - {code: D, name: 晚班, line: main, start: "16:00", end: "24:00", need: {lawyers: 1}}
""", [(7, "班次代码 'D' 在线路 main 中重复 (第 5 行已定义)")]),
    ("negative head-count",
     """\
  - code: D
    name: 白班
    line: main
    start: "08:00"
    end: "16:00"
    need:
      workday: {lawyers: 3}
      weekend: {lawyers: -1}
""", [(12, "lawyers (人数) 应为不小于 0 的整数, 实际为 -1")]),
    ("negative skill minimum",
     """\
  - {code: D, name: 白班, line: main, start: "08:00", end: "16:00",
     need: {lawyers: 2, skills: {labor: -1}}}
""", [(6, "技能 labor 的人数应为不小于 0 的整数")]),
    ("skill minimum above the head-count",
     """\
  - code: D
    name: 白班
    line: main
    start: "08:00"
    end: "16:00"
    need:
      workday:
        lawyers: 2
        skills: {labor: 1, contract: 3}
""", [(13, "技能 contract 至少 3 人, 超过了该班次的总人数 2")]),
    ("language minimum above the head-count",
     """\
  - {code: C, name: 方言, line: dialect, start: "08:00", end: "16:00",
     need: {lawyers: 1, languages: {cantonese: 2}}}
""", [(6, "语言 cantonese 至少 2 人")]),
    ("min_proficiency out of range",
     """\
  - {code: D, name: 白班, line: main, start: "08:00", end: "16:00",
     need: {lawyers: 1, min_proficiency: 6}}
""", [(6, "min_proficiency (熟练度) 应为 1 至 5 的整数")]),
    ("overlap on the same day kind",
     """\
  - {code: D, name: 白班, line: main, start: "08:00", end: "16:00", need: {lawyers: 1}}
  - {code: M, name: 中班, line: main, start: "12:00", end: "20:00",
     need: {workday: {lawyers: 1}}}
""", [(6, "12:00-20:00 与 D 08:00-16:00 在工作日的同一天时间重叠")]),
    ("overlap across midnight",
     """\
  - {code: L, name: 长夜班, line: main, start: "20:00", end: "08:00", night: true,
     need: {lawyers: 1}}
  - {code: D, name: 白班, line: main, start: "06:00", end: "14:00",
     need: {weekend: {lawyers: 1}}}
""", [(7, "06:00-14:00 与 L 20:00-08:00 时间重叠 (L 跨过零点, 延续到次日 D 开始之后)")]),
    ("need mixing day kinds and a head-count",
     """\
  - code: D
    name: 白班
    line: main
    start: "08:00"
    end: "16:00"
    need:
      lawyers: 2
      weekend: {lawyers: 1}
""", [(11, "need 中不能混用 'lawyers' 和日期类型 'weekend'")]),
    ("misspelt day kind",
     """\
  - code: D
    name: 白班
    line: main
    start: "08:00"
    end: "16:00"
    need:
      workday: {lawyers: 2}
      holidy: {lawyers: 1}
""", [(12, "未知的日期类型 'holidy', 是否想写 'holiday'?")]),
    ("missing required keys",
     """\
  - code: D
    line: main
    start: "08:00"
    need: {lawyers: 1}
""", [(5, "缺少必填项 'name'"), (5, "缺少必填项 'end'")]),
    ("remote day shift",
     """\
  - {code: D, name: 白班, line: main, start: "08:00", end: "16:00", remote: true,
     need: {lawyers: 1}}
""", [(5, "remote (居家远程值守) 只适用于夜班")]),
    ("bad weekday",
     """\
  - {code: D, name: 白班, line: main, start: "08:00", end: "16:00", weekdays: [mon, fry],
     need: {lawyers: 1}}
""", [(5, "weekdays 中 fry 无效")]),
    ("bad shift code",
     """\
  - {code: D/1, name: 白班, line: main, start: "08:00", end: "16:00", need: {lawyers: 1}}
""", [(5, "班次代码 'D/1' 无效 (只能用字母、数字、- 和 _)")]),
    ("duplicate YAML key",
     """\
  - code: D
    name: 白班
    name: 早班
    line: main
    start: "08:00"
    end: "16:00"
    need: {lawyers: 1}
""", [(7, "重复的键 'name'")]),
    ("YAML syntax",
     """\
  - {code: D, name: 白班, line: main, start: "08:00", end: "16:00", need: {lawyers: 1}
""", [(6, "YAML 语法错误")]),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in BROKEN_TEMPLATES],
                         ids=[what for what, _, _ in BROKEN_TEMPLATES])
def test_broken_templates_name_file_and_line(tmp_path: Path, text: str,
                                             expected: list[tuple[int, str]]) -> None:
    path = write(tmp_path, HEAD + text)
    problems = problems_of(load_templates, path)
    assert len(problems) == len(expected), problems
    for problem, (line, words) in zip(problems, expected, strict=True):
        assert problem.startswith(f"{path}:{line}: "), problem
        assert words in problem, problem


def test_broken_lines_and_top_level(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        lines:
          main: {name: 主线, langauges: [cantonese]}
          dialect: {name: 方言席, languages: [klingon]}
          sme: {name: 专线, min_practice_years: -3}
        shift:
          - {code: D}
        """)
    problems = problems_of(load_templates, path)
    assert problems == [
        f"{path}:1: 缺少必填项 'shifts'",
        f"{path}:2: 线路 main: 未知的键 'langauges', 是否想写 'languages'? "
        "(可用: name, languages, min_practice_years)",
        f"{path}:3: 线路 dialect: 未知语言 'klingon' (可用: mandarin, cantonese, hakka, teochew, "
        "southwestern, hubei, minnan, wu, english)",
        f"{path}:4: 线路 sme: min_practice_years 应为不小于 0 的整数 (年), 实际为 -3",
        f"{path}:5: 未知的键 'shift', 是否想写 'shifts'? (可用: lines, shifts)",
    ]


def test_every_problem_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + """\
  - {code: D, name: 白班, line: main, start: "08:00", end: "16:00", need: {lawyers: 1}}
  - {code: E, name: 晚班, line: nowhere, start: "16:00", end: "24:00", need: {lawyers: 1}}
  - {code: X, name: 错, line: main, start: "7", end: "16:00",
     need: {lawyers: 1, skills: {labor: 2}}}
  - {code: M, name: 中班, line: main, start: "12:00", end: "18:00", need: {lawyers: 1}}
""")
    with pytest.raises(RosterError) as info:
        load_templates(path)
    error = info.value
    assert error.code == "roster.templates"
    lines = [int(p.split(":")[1]) for p in error.params["problems"]]
    assert lines == [6, 7, 8, 9]
    assert error.params["count"] == 4
    assert error.params["summary"].startswith(f"{path}:6: 班次 E [nowhere]: 没有线路 'nowhere'")
    assert "; …… 另有 1 处" in error.params["summary"]
    assert str(error).startswith("班次模板文件有 4 处问题: ")


def test_missing_or_empty_templates_file(tmp_path: Path) -> None:
    missing = tmp_path / "none.yaml"
    assert problems_of(load_templates, missing)[0].startswith(f"{missing}:1: 无法读取文件")
    empty = write(tmp_path, "\n", "empty.yaml")
    assert problems_of(load_templates, empty) == [f"{empty}:1: 文件为空"]
    scalar = write(tmp_path, "just text\n", "scalar.yaml")
    assert "应为映射" in problems_of(load_templates, scalar)[0]


# --- lawyers: YAML ---------------------------------------------------------------------------


def test_lawyers_yaml_options(tmp_path: Path, templates: Templates) -> None:
    path = write(tmp_path, """\
        - work_id: A1
          name: 甲
          skills: "labor:4;婚姻家庭:3"
          languages: 普通话、粤语
          practice_since: 2020
          off_weekdays: [周六, sun]
          prefer: D
          avoid: [N, 星期日]
          unavailable:
            - {from: "2026-12-10 14:00", to: "2026-12-10 18:00", reason: 开庭}
            - {date: 2026-12-20}
        - {work_id: 7, practice_years: 2.5}
        """, "lawyers.yaml")
    first, second = load_lawyers(path, tz=TZ, today=TODAY, templates=templates)
    assert first.skills == {"labor": 4, "marriage_family": 3}
    assert first.languages == {Language.MANDARIN, Language.CANTONESE}
    assert first.practice_years == pytest.approx(6.88, abs=0.01)
    assert first.off_weekdays == {5, 6}
    assert (first.prefer, first.avoid) == ({"D"}, {"N", "sun"})
    assert [(p.start, p.end, p.reason) for p in first.unavailable] == [
        (datetime(2026, 12, 10, 14, tzinfo=TZ), datetime(2026, 12, 10, 18, tzinfo=TZ), "开庭"),
        (datetime(2026, 12, 20, tzinfo=TZ), datetime(2026, 12, 21, tzinfo=TZ), ""),
    ]
    assert (second.work_id, second.name, second.practice_years) == ("7", "", 2.5)
    assert (second.max_shifts, second.remote_night, second.lines) == (None, False, frozenset())


def test_unavailability_is_in_the_given_zone(tmp_path: Path) -> None:
    path = write(tmp_path, "lawyers: [{work_id: A1, unavailable: [{date: 2026-12-10}]}]\n",
                 "lawyers.yaml")
    utc = ZoneInfo("UTC")
    (lawyer,) = load_lawyers(path, tz=utc, today=TODAY)
    (period,) = lawyer.unavailable
    assert (period.start, period.end) == (datetime(2026, 12, 10, tzinfo=utc),
                                          datetime(2026, 12, 11, tzinfo=utc))
    # 2026-12-10 08:00 in Shanghai is still 2026-12-10 00:00 UTC: inside the UTC day.
    assert period.overlaps(datetime(2026, 12, 10, 8, tzinfo=TZ),
                           datetime(2026, 12, 10, 9, tzinfo=TZ))
    assert not period.overlaps(datetime(2026, 12, 10, 7, tzinfo=TZ),
                               datetime(2026, 12, 10, 8, tzinfo=TZ))


LAWYERS_HEAD = "lawyers:\n"

BROKEN_LAWYERS = [
    ("unknown key with a hint", """\
  - {work_id: A1, name: 甲, remote_nigth: true}
""", [(2, "律师 A1 remote_nigth: 未知的键 'remote_nigth', 是否想写 'remote_night'?")]),
    ("skill level out of range", """\
  - work_id: A1
    skills: {labor: 7}
""", [(3, "律师 A1 skills.labor: 技能 labor 的熟练度应为 1 至 5 的整数, 实际为 7")]),
    ("unknown skill", """\
  - work_id: A1
    skills: {labour: 3}
""", [(3, "未知技能 'labour', 是否想写 'labor'?")]),
    ("unknown language", """\
  - work_id: A1
    languages: [mandarin, cantonse]
""", [(3, "律师 A1 languages[1]: 未知语言 'cantonse', 是否想写 'cantonese'?")]),
    ("missing work id", """\
  - {name: 甲}
""", [(2, "lawyers[0]: 缺少工号 work_id")]),
    ("duplicate work id", """\
  - {work_id: A1, name: 甲}
  - {work_id: A2, name: 乙}
  - {work_id: A1, name: 丙}
""", [(4, "律师 A1 work_id: 工号 A1 重复 (第 2 行已出现)")]),
    ("bad date", """\
  - work_id: A1
    unavailable:
      - {from: 2026-12-10, to: 2026-12-xx}
""", [(4, "律师 A1 unavailable[0].to: 日期 '2026-12-xx' 无效")]),
    ("a date YAML cannot build", """\
  - work_id: A1
    unavailable:
      - from: 2026-12-10
        to: 2026-13-01
""", [(5, "律师 A1 unavailable[0].to: 日期 '2026-13-01' 无效")]),
    ("period ending before it starts", """\
  - work_id: A1
    unavailable:
      - {from: 2026-12-12, to: 2026-12-10, reason: 开庭}
""", [(4, "结束 2026-12-10 早于开始 2026-12-12")]),
    ("unknown key in a period", """\
  - work_id: A1
    unavailable:
      - {from: 2026-12-12, until: 2026-12-13}
""", [(4, "未知的键 'until'")]),
    ("bad weekday off", """\
  - {work_id: A1, off: [saturday]}
""", [(2, "off (固定休息日) 中 saturday 无效")]),
    ("max_shifts not a number", """\
  - {work_id: A1, max_shifts: many}
""", [(2, "max_shifts 应为 0 至 93 的整数, 实际为 'many'")]),
    ("remote_night not a boolean", """\
  - {work_id: A1, remote_night: maybe}
""", [(2, "remote_night 应为 true/false")]),
    ("practice starting in the future", """\
  - {work_id: A1, practice_since: 2027-01-01}
""", [(2, "practice_since 2027-01-01 晚于今天 2026-11-20")]),
    ("unknown line", """\
  - {work_id: A1, lines: [main, smee]}
""", [(2, "律师 A1 lines[1]: 没有线路 'smee', 是否想写 'sme'?")]),
    ("unknown shift in prefer", """\
  - {work_id: A1, prefer: [D, X]}
""", [(2, "prefer 中的 'X' 既不是班次代码也不是星期")]),
    ("only lines the lawyer cannot serve", """\
  - {work_id: A1, lines: [dialect, sme], practice_since: 2025-01-01}
""", [(2, "不能在所列的任何线路值班: dialect 需要会 客家话、粤语; sme 需要执业满 3 年")]),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in BROKEN_LAWYERS],
                         ids=[what for what, _, _ in BROKEN_LAWYERS])
def test_broken_lawyers_name_file_and_line(tmp_path: Path, templates: Templates, text: str,
                                           expected: list[tuple[int, str]]) -> None:
    path = write(tmp_path, LAWYERS_HEAD + text, "lawyers.yaml")
    problems = problems_of(load_lawyers, path, tz=TZ, today=TODAY, templates=templates)
    assert len(problems) == len(expected), problems
    for problem, (line, words) in zip(problems, expected, strict=True):
        assert problem.startswith(f"{path}:{line}: "), problem
        assert words in problem, problem


def test_lawyers_error_collects_every_lawyer(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        lawyer:
          - {work_id: A1}
        """, "lawyers.yaml")
    assert problems_of(load_lawyers, path, tz=TZ, today=TODAY) == [
        f"{path}:1: 未知的键 'lawyer', 是否想写 'lawyers'? (可用: lawyers)",
        f"{path}:1: 缺少 lawyers: 律师列表",
    ]
    path = write(tmp_path, """\
        lawyers:
          - {work_id: A1, skills: {labor: 0}}
          - {work_id: A2}
          - {work_id: A3, languages: [martian], max_consecutive_nights: -1}
        """, "lawyers.yaml")
    with pytest.raises(RosterError) as info:
        load_lawyers(path, tz=TZ, today=TODAY)
    assert info.value.code == "roster.lawyers"
    assert [int(p.split(":")[1]) for p in info.value.params["problems"]] == [2, 4, 4]
    assert str(info.value).startswith("律师名单文件有 3 处问题: ")


# --- lawyers: CSV ----------------------------------------------------------------------------

CSV_HEADER = ("work_id,name,firm,skills,languages,max_shifts,max_consecutive_nights,"
              "remote_night,practice_since,off_weekdays,prefer,avoid")


def test_lawyers_csv(tmp_path: Path, templates: Templates) -> None:
    path = tmp_path / "lawyers.csv"
    path.write_text("\ufeff" + CSV_HEADER + ",unavailable,lines\r\n"
                    "L2001,张三,甲律所,labor:4;family:3,mandarin、cantonese,17,2,是,2015-07-01,"
                    "sat;sun,D,N、sun,2026-12-10~2026-12-12(开庭);2026-12-20,main;dialect\r\n"
                    ",,,,,,,,,,,,,\r\n"
                    'L2002,"李四, 王五",乙律所,contract:3,,,,false,,,,,,\r\n', encoding="utf-8")
    first, second = load_lawyers(path, tz=TZ, today=TODAY, templates=templates)
    assert first == Lawyer(
        "L2001", "张三", "甲律所", {"labor": 4, "marriage_family": 3},
        frozenset({Language.MANDARIN, Language.CANTONESE}), 17, 2,
        (first.unavailable[0], first.unavailable[1]), frozenset({5, 6}), frozenset({"D"}),
        frozenset({"N", "sun"}), True, first.practice_years, frozenset({"main", "dialect"}))
    assert first.practice_years == pytest.approx(11.39, abs=0.01)
    assert [(p.start, p.end, p.reason) for p in first.unavailable] == [
        (datetime(2026, 12, 10, tzinfo=TZ), datetime(2026, 12, 13, tzinfo=TZ), "开庭"),
        (datetime(2026, 12, 20, tzinfo=TZ), datetime(2026, 12, 21, tzinfo=TZ), ""),
    ]
    assert (second.work_id, second.name, second.firm) == ("L2002", "李四, 王五", "乙律所")
    assert (second.skills, second.languages) == ({"contract": 3}, {Language.MANDARIN})
    assert (second.max_shifts, second.remote_night, second.practice_years) == (None, False, None)


def test_lawyers_csv_saved_by_excel_in_gb18030(tmp_path: Path) -> None:
    path = tmp_path / "lawyers.csv"
    path.write_bytes((CSV_HEADER + "\r\nL2001,张三,甲律所,劳动争议:4,粤语,16,,否,,,,\r\n")
                     .encode("gb18030"))
    (lawyer,) = load_lawyers(path, tz=TZ, today=TODAY)
    assert (lawyer.name, lawyer.firm, lawyer.skills, lawyer.languages) == (
        "张三", "甲律所", {"labor": 4}, {Language.CANTONESE})


def test_broken_lawyers_csv_names_file_and_row(tmp_path: Path, templates: Templates) -> None:
    path = tmp_path / "lawyers.csv"
    path.write_text(CSV_HEADER + "\n"
                    "L2001,张三,,labor:4;contract,,,,,,,,\n"
                    '"L2002","李四\n(多行)",,,klingon,,,,,,,\n'
                    "L2003,王五,,,,,,,,,X,\n"
                    "L2001,重复,,,,,,,,,,\n"
                    "L2004,赵六,,,,-2,,,2015-02-30,,,\n"
                    "L2005,多,,,,,,,,,,,,,\n", encoding="utf-8")
    problems = problems_of(load_lawyers, path, tz=TZ, today=TODAY, templates=templates)
    assert problems == [
        f"{path}:2: 律师 L2001 列 skills: 技能 'contract' 缺少熟练度, 应为 代码:熟练度(1-5), "
        "例如 labor:4",
        f"{path}:3: 律师 L2002 列 languages: 未知语言 'klingon' (可用: mandarin, cantonese, "
        "hakka, teochew, southwestern, hubei, minnan, wu, english)",
        f"{path}:5: 律师 L2003 列 prefer: prefer 中的 'X' 既不是班次代码也不是星期 "
        "(班次: C, D, E, N, S; 星期: mon…sun)",
        f"{path}:6: 律师 L2001 列 work_id: 工号 L2001 重复 (第 2 行已出现)",
        f"{path}:7: 律师 L2004 列 max_shifts: max_shifts 应为 0 至 93 的整数, 实际为 '-2'",
        f"{path}:7: 律师 L2004 列 practice_since: practice_since (执业起始日期) '2015-02-30' "
        "无效, 应为 YYYY-MM-DD, 例如 2015-07-01",
        f"{path}:8: 该行有 15 列, 多于表头的 12 列 (含逗号的单元格请加引号)",
    ]


def test_lawyers_csv_header_problems(tmp_path: Path) -> None:
    path = tmp_path / "lawyers.csv"
    path.write_text("work_id,name,skils,name\nL1,甲,labor:3,甲\n", encoding="utf-8")
    assert problems_of(load_lawyers, path, tz=TZ, today=TODAY) == [
        f"{path}:1: 表头: 未知的列 'skils', 是否想写 'skills'? (可用: work_id, name, firm, "
        "skills, languages, max_shifts, max_consecutive_nights, remote_night, practice_since, "
        "off_weekdays, prefer, avoid, lines, unavailable)",
        f"{path}:1: 表头: 列 'name' 重复",
    ]
    path.write_text("name\n甲\n", encoding="utf-8")
    assert problems_of(load_lawyers, path, tz=TZ, today=TODAY) == [
        f"{path}:1: 表头: 缺少 work_id 列"]
    path.write_text("", encoding="utf-8")
    assert "文件为空" in problems_of(load_lawyers, path, tz=TZ, today=TODAY)[0]


def test_practice_years_default_to_today_in_the_zone(tmp_path: Path) -> None:
    path = write(tmp_path, "lawyers: [{work_id: A1, practice_since: 2000-01-01}]\n",
                 "lawyers.yaml")
    (lawyer,) = load_lawyers(path, tz=TZ)
    today = datetime.now(TZ).date()
    assert lawyer.practice_years == pytest.approx((today - date(2000, 1, 1)).days / 365.2425,
                                                  abs=0.01)
