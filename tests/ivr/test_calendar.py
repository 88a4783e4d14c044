"""Holiday calendars and weekly schedules, including the shipped China calendar."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from hotline.ivr.calendar import CalendarDataError, HolidayCalendar, WeeklySchedule

CHINA_YAML = Path(__file__).resolve().parents[2] / "ivr_flows" / "calendars" / "china.yaml"
CHINA = HolidayCalendar.from_data(yaml.safe_load(CHINA_YAML.read_text(encoding="utf-8")), "china")
OFFICE = WeeklySchedule.parse({"mon-fri": "08:30-17:30", "sat-sun": "closed"})


# --- the shipped China calendar ------------------------------------------------------------

def test_china_covers_2025_and_2026_only() -> None:
    assert CHINA.name == "china"
    assert CHINA.years == (2025, 2026)
    assert CHINA.covers(2026) and not CHINA.covers(2027)


def test_china_2026_spring_festival() -> None:
    assert CHINA.is_holiday(date(2026, 2, 17))
    assert CHINA.holiday_name(date(2026, 2, 17)) == "春节"
    assert CHINA.is_adjusted_workday(date(2026, 2, 14))
    assert not CHINA.is_holiday(date(2026, 2, 14))
    assert CHINA.holiday_name(date(2026, 2, 14)) is None


def test_china_2026_10_08_is_a_normal_thursday() -> None:
    day = date(2026, 10, 8)
    assert day.strftime("%a") == "Thu"
    assert not CHINA.is_holiday(day)
    assert not CHINA.is_adjusted_workday(day)
    assert OFFICE.status(datetime(2026, 10, 8, 10, 0), CHINA) == "open"


def test_china_2025_10_08_is_the_last_day_of_national_day() -> None:
    assert CHINA.is_holiday(date(2025, 10, 8))
    assert CHINA.holiday_name(date(2025, 10, 8)) == "国庆节、中秋节"
    assert not CHINA.is_holiday(date(2025, 10, 9))


def test_china_totals_match_the_state_council_notices() -> None:
    def days_off(year: int) -> int:
        return sum(CHINA.is_holiday(date(year, 1, 1) + timedelta(d)) for d in range(365))

    assert days_off(2025) == 1 + 8 + 3 + 5 + 3 + 8
    assert days_off(2026) == 3 + 9 + 3 + 5 + 3 + 3 + 7
    workdays = [w.day.isoformat() for w in CHINA.workdays]
    assert workdays == ["2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11",
                        "2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20",
                        "2026-10-10"]
    assert all(w.day.weekday() >= 5 for w in CHINA.workdays)


def test_datetimes_are_looked_up_by_their_date() -> None:
    assert CHINA.is_holiday(datetime(2026, 2, 17, 9, 30))
    assert CHINA.is_adjusted_workday(datetime(2026, 2, 14, 9, 30))


def test_calendar_is_hashable_and_comparable() -> None:
    again = HolidayCalendar.from_data(yaml.safe_load(CHINA_YAML.read_text(encoding="utf-8")),
                                      "china")
    assert again == CHINA
    assert hash(again) == hash(CHINA)


# --- malformed calendar data -----------------------------------------------------------------

def calendar(**years: Any) -> dict[str, Any]:
    return {"name": "test", "years": {int(y.lstrip("y")): body for y, body in years.items()}}


def problems(data: Any, name: str = "test") -> list[tuple[tuple[str | int, ...], str]]:
    """Each problem's key path beside its line of the exception text."""
    with pytest.raises(CalendarDataError) as caught:
        HolidayCalendar.from_data(data, name)
    assert isinstance(caught.value, ValueError)
    lines = str(caught.value).splitlines()
    assert len(lines) == len(caught.value.problems)
    return [(path, line) for (path, _), line in zip(caught.value.problems, lines, strict=True)]


def test_problems_keep_the_bare_message_for_the_loader() -> None:
    data = calendar(y2026={"holidays": [{"name": "元旦", "date": "2026-02-30"}]})
    with pytest.raises(CalendarDataError) as caught:
        HolidayCalendar.from_data(data, "test")
    assert caught.value.path == ("years", 2026, "holidays", 0, "date")
    assert caught.value.problems == [
        (("years", 2026, "holidays", 0, "date"),
         "日期 '2026-02-30' 无效, 应为 YYYY-MM-DD, 例如 2026-01-01")]
    assert str(caught.value) == ("years.2026.holidays[0].date: "
                                 "日期 '2026-02-30' 无效, 应为 YYYY-MM-DD, 例如 2026-01-01")


def test_iso_strings_and_single_date_holidays_are_accepted() -> None:
    cal = HolidayCalendar.from_data(calendar(y2030={
        "holidays": [{"name": "元旦", "date": "2030-01-01"},
                     {"name": "春节", "from": "2030-02-02", "to": "2030-02-08"}],
        "workdays": [{"date": "2030-01-26", "for": "春节"}],
    }), "test")
    assert cal.is_holiday(date(2030, 1, 1)) and cal.is_holiday(date(2030, 2, 8))
    assert cal.is_adjusted_workday(date(2030, 1, 26))


def test_new_year_may_start_in_the_previous_december() -> None:
    cal = HolidayCalendar.from_data(calendar(y2023={
        "holidays": [{"name": "元旦", "from": "2022-12-31", "to": "2023-01-02"}]}), "test")
    assert cal.holiday_name(date(2022, 12, 31)) == "元旦"


def test_name_must_match_the_file() -> None:
    data = calendar(y2026={"holidays": [{"name": "元旦", "date": "2026-01-01"}]})
    assert problems(data, "china") == [
        (("name",), "name: 日历名称 'test' 与文件名 'china' 不一致")]


def test_every_bad_entry_is_reported_with_its_path() -> None:
    data = calendar(y2026={
        "holidays": [
            {"name": "春节", "from": "2026-02-23", "to": "2026-02-15"},
            {"name": "劳动节", "from": "2026-05-01", "to": "2026-13-05"},
            {"name": "国庆节", "from": "2026-10-01", "to": "2026-10-07"},
            {"name": "中秋节", "from": "2026-10-05", "to": "2026-10-06"},
        ],
        "workdays": [
            {"date": "2026-10-12", "for": "国庆节"},
            {"date": "2026-10-10", "for": "国庆"},
            {"date": "2026-10-03", "for": "国庆节"},
        ],
    })
    assert problems(data) == [
        (("years", 2026, "holidays", 0), "years.2026.holidays[0]: 春节: "
                                         "开始日期 2026-02-23 晚于结束日期 2026-02-15"),
        (("years", 2026, "holidays", 1, "to"),
         "years.2026.holidays[1].to: 日期 '2026-13-05' 无效, 应为 YYYY-MM-DD, 例如 2026-01-01"),
        (("years", 2026, "holidays", 3), "years.2026.holidays[3]: 中秋节 与 国庆节 的日期重叠"),
        (("years", 2026, "workdays", 0), "years.2026.workdays[0]: "
                                         "调休上班日 2026-10-12 是周一, 应为周六或周日"),
        (("years", 2026, "workdays", 1, "for"), "years.2026.workdays[1].for: "
                                                "'国庆' 不是 2026 年的节日 (现有: 中秋节、国庆节)"),
        (("years", 2026, "workdays", 2), "years.2026.workdays[2]: "
                                         "2026-10-03 已是 国庆节 假期, 不能同时是调休上班日"),
    ]


@pytest.mark.parametrize(("data", "message"), [
    ([], "日历文件应为映射, 包含 name 和 years"),
    ({"name": "test"}, "years: 缺少 years, 应为 年份: {holidays: [...], workdays: [...]}"),
    ({"name": "test", "colour": 1, "years": {2026: {"holidays": [{"name": "元旦",
                                                                 "date": "2026-01-01"}]}}},
     "colour: 未知的键, 只能是 name 或 years"),
    (calendar(y26={"holidays": [{"name": "元旦", "date": "2026-01-01"}]}),
     "years.26: 年份 26 无效, 应为四位数年份, 例如 2026"),
    (calendar(y2026={"holidays": []}),
     "years.2026.holidays: 应为非空列表, 每项如 {name: 元旦, from: ..., to: ...}"),
    (calendar(y2026={"holidays": [{"from": "2026-01-01"}]}),
     "years.2026.holidays[0].name: 缺少节日名称 name"),
    (calendar(y2026={"holidays": [{"name": "春节", "from": "2026-02-01", "to": "2026-03-01"}]}),
     "years.2026.holidays[0]: 春节: 2026-02-01 至 2026-03-01 超过 15 天, 请检查日期"),
    (calendar(y2026={"holidays": [{"name": "春节", "from": "2027-02-01", "to": "2027-02-03"}]}),
     "years.2026.holidays[0]: 春节: 2027-02-01 至 2027-02-03 不在 2026 年的安排范围内"),
    (calendar(y2026={"holidays": [{"name": "元旦", "date": "2026-01-01"}],
                     "workdays": [{"date": "2026-01-04"}]}),
     "years.2026.workdays[0]: 应为 {date: 日期, for: 节日}, 实际为 {'date': '2026-01-04'}"),
])
def test_malformed_calendars(data: Any, message: str) -> None:
    assert [m for _, m in problems(data)] == [message]


def test_error_text_joins_all_problems() -> None:
    data = {"name": "test", "a": 1, "b": 2, "years": {2026: {
        "holidays": [{"name": "元旦", "date": "2026-01-01"}]}}}
    with pytest.raises(ValueError, match="(?s)a: 未知的键.*\nb: 未知的键"):
        HolidayCalendar.from_data(data, "test")


# --- weekly schedules ------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "message"), [
    ({"mon-fir": "08:30-17:30"},
     '营业时间 "mon-fir": 未知的星期 "fir", '
     "应为 mon tue wed thu fri sat sun 之一、范围 (如 mon-fri) 或 daily"),
    ({"monday": "08:30-17:30"},
     '营业时间 "monday": 未知的星期 "monday", '
     "应为 mon tue wed thu fri sat sun 之一、范围 (如 mon-fri) 或 daily"),
    ({"fri-mon": "08:30-17:30"},
     '营业时间 "fri-mon": 星期范围应从前往后写, 例如 mon-fri 或 sat-sun'),
    ({"mon-fri": "25:00-17:30"},
     '营业时间 "mon-fri: 25:00-17:30": 时间 "25:00" 无效, 应为 HH:MM (00:00 至 24:00), 例如 08:30'),
    ({"mon-fri": "8.30-17:30"},
     '营业时间 "mon-fri: 8.30-17:30": 时间 "8.30" 无效, 应为 HH:MM (00:00 至 24:00), 例如 08:30'),
    ({"sat": "08:60-12:00"},
     '营业时间 "sat: 08:60-12:00": 时间 "08:60" 无效, 应为 HH:MM (00:00 至 24:00), 例如 08:30'),
    ({"sat": "0830"}, '营业时间 "sat: 0830": "0830" 应为 HH:MM-HH:MM, 例如 08:30-17:30'),
    ({"sat": "09:00-09:00"},
     '营业时间 "sat: 09:00-09:00": 开始和结束时间相同; 全天开放请写 00:00-24:00'),
    ({"sat": "24:00-08:00"}, '营业时间 "sat: 24:00-08:00": 开始时间不能是 24:00, 请写 00:00'),
    ({"mon-fri": "08:30-17:30", "fri": "09:00-12:00"},
     '营业时间 "mon-fri" 与 "fri" 都包含 fri (周五), 每天只能写一次'),
    ({"daily": "08:00-20:00", "sat-sun": "closed"},
     '营业时间 "daily" 与 "sat-sun" 都包含 sat (周六), 每天只能写一次'),
    ({"mon": ["08:00-12:00", "11:30-17:00"]},
     "营业时间 \"mon: ['08:00-12:00', '11:30-17:00']\": 时段 08:00-12:00 与 11:30-17:00 重叠"),
    ({"mon": ["20:00-08:00", "22:00-23:00"]},
     "营业时间 \"mon: ['20:00-08:00', '22:00-23:00']\": 时段 20:00-08:00 与 22:00-23:00 重叠"),
    ({"mon": 510}, '营业时间 "mon: 510": 应为 "HH:MM-HH:MM"、这样的列表或 closed '
                   '(YAML 中请给时间加引号, 例如 "08:30-17:30")'),
    ({"sun": False}, '营业时间 "sun: False": 应为 "HH:MM-HH:MM"、这样的列表或 closed '
                     '(YAML 中请给时间加引号, 例如 "08:30-17:30")'),
    ({"sun": []}, '营业时间 "sun: []": 应为 "HH:MM-HH:MM"、这样的列表或 closed '
                  '(YAML 中请给时间加引号, 例如 "08:30-17:30")'),
])
def test_schedule_errors_name_key_and_value(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        WeeklySchedule.parse(spec)
    assert str(caught.value) == message


def test_schedule_accepts_every_documented_form() -> None:
    schedule = WeeklySchedule.parse({
        "mon-fri": ["08:30-12:00", "13:30-17:30"],
        "sat": "9:00-12:00",
        "sun": "closed",
    })
    assert schedule.days[0] == ((510, 720), (810, 1050))
    assert schedule.days[5] == ((540, 720),)
    assert schedule.days[6] == ()
    assert WeeklySchedule.parse({"daily": "00:00-24:00"}).days == ((((0, 1440),),) * 7)
    assert WeeklySchedule.parse({"Sat-Sun": "closed"}).days == ((),) * 7
    assert WeeklySchedule.parse({"mon": ("08:00-09:00",)}).days[0] == ((480, 540),)


def test_status_on_an_ordinary_week() -> None:
    schedule = WeeklySchedule.parse({"mon-fri": ["08:30-12:00", "13:30-17:30"]})
    monday = datetime(2026, 3, 9)
    assert schedule.status(monday.replace(hour=8, minute=29, second=59)) == "closed"
    assert schedule.status(monday.replace(hour=8, minute=30)) == "open"
    assert schedule.status(monday.replace(hour=12, minute=15)) == "closed"
    assert schedule.status(monday.replace(hour=17, minute=29)) == "open"
    assert schedule.status(monday.replace(hour=17, minute=30)) == "closed"
    assert schedule.status(datetime(2026, 3, 14, 10)) == "closed"  # Saturday, unnamed
    always = WeeklySchedule.parse({"daily": "00:00-24:00"})
    assert always.status(datetime(2026, 3, 14, 0, 0)) == "open"
    assert always.status(datetime(2026, 3, 14, 23, 59, 59)) == "open"


def test_overnight_range_runs_into_the_next_morning() -> None:
    night = WeeklySchedule.parse({"fri": "20:00-08:00"})
    friday = datetime(2026, 3, 13)
    assert night.status(friday.replace(hour=19, minute=59)) == "closed"
    assert night.status(friday.replace(hour=20)) == "open"
    assert night.status(friday.replace(hour=23, minute=59)) == "open"
    assert night.status(datetime(2026, 3, 14, 0, 0)) == "open"  # Saturday, from Friday
    assert night.status(datetime(2026, 3, 14, 7, 59)) == "open"
    assert night.status(datetime(2026, 3, 14, 8, 0)) == "closed"
    assert night.status(datetime(2026, 3, 13, 3, 0)) == "closed"  # Thursday had no night
    weekend = WeeklySchedule.parse({"sun": "22:00-06:00"})
    assert weekend.status(datetime(2026, 3, 16, 5, 0)) == "open"  # Monday, from Sunday


def test_holiday_wins_even_over_a_night_shift() -> None:
    night = WeeklySchedule.parse({"daily": "20:00-08:00"})
    assert night.status(datetime(2026, 2, 17, 21, 0), CHINA) == "holiday"
    assert night.status(datetime(2026, 2, 17, 3, 0), CHINA) == "holiday"
    # The morning after the last holiday: the holiday's own night range did not exist.
    assert night.status(datetime(2026, 2, 24, 3, 0), CHINA) == "closed"
    assert night.status(datetime(2026, 2, 24, 3, 0)) == "open"


def test_adjusted_workday_uses_monday_hours() -> None:
    schedule = WeeklySchedule.parse({"mon": "08:00-18:00", "tue-fri": "09:00-17:00",
                                     "sat": "10:00-12:00"})
    saturday = datetime(2026, 2, 14)
    assert schedule.status(saturday.replace(hour=8, minute=30)) == "closed"
    assert schedule.status(saturday.replace(hour=8, minute=30), CHINA) == "open"
    assert schedule.status(saturday.replace(hour=17, minute=30), CHINA) == "open"
    assert schedule.status(saturday.replace(hour=11), CHINA) == "open"
    assert schedule.status(saturday.replace(hour=18), CHINA) == "closed"
    sunday = datetime(2026, 1, 4, 9)
    assert OFFICE.status(sunday) == "closed"
    assert OFFICE.status(sunday, CHINA) == "open"


def test_public_holiday_status() -> None:
    assert OFFICE.status(datetime(2026, 2, 17, 10), CHINA) == "holiday"
    assert OFFICE.status(datetime(2026, 2, 17, 10)) == "open"  # no calendar: a Tuesday
    assert OFFICE.status(datetime(2026, 2, 21, 10), CHINA) == "holiday"  # Saturday too


def test_next_change() -> None:
    friday_evening = datetime(2026, 3, 13, 18, 0)
    assert OFFICE.next_change(friday_evening) == datetime(2026, 3, 16, 8, 30)
    assert OFFICE.next_change(datetime(2026, 3, 16, 8, 30)) == datetime(2026, 3, 16, 17, 30)
    assert OFFICE.next_change(datetime(2026, 3, 16, 8, 29, 30)) == datetime(2026, 3, 16, 8, 30)
    # Before 春节 on an adjusted workday: open until 17:30, then closed, then the holiday.
    assert OFFICE.next_change(datetime(2026, 2, 14, 12), CHINA) == datetime(2026, 2, 14, 17, 30)
    assert OFFICE.next_change(datetime(2026, 2, 14, 18), CHINA) == datetime(2026, 2, 15, 0, 0)
    # The 9-day 春节 break is longer than the 8-day look-ahead.
    assert OFFICE.next_change(datetime(2026, 2, 15, 10), CHINA) is None
    assert WeeklySchedule.parse({"daily": "00:00-24:00"}).next_change(friday_evening) is None
    assert WeeklySchedule.parse({}).next_change(friday_evening) is None


def test_next_change_across_midnight_and_time_zones() -> None:
    night = WeeklySchedule.parse({"mon-fri": "20:00-08:00"})
    tz = ZoneInfo("Asia/Shanghai")
    friday_late = datetime(2026, 3, 13, 23, 0, tzinfo=tz)
    assert night.next_change(friday_late) == datetime(2026, 3, 14, 8, 0, tzinfo=tz)
    assert night.next_change(friday_late).tzinfo is tz  # type: ignore[union-attr]


def test_next_open_crosses_the_spring_festival() -> None:
    assert OFFICE.next_open(datetime(2026, 2, 15, 10), CHINA) == datetime(2026, 2, 24, 8, 30)
    assert OFFICE.next_open(datetime(2026, 2, 13, 18), CHINA) == datetime(2026, 2, 14, 8, 30)
    assert OFFICE.next_open(datetime(2026, 2, 13, 10), CHINA) is None  # open now
    assert WeeklySchedule.parse({}).next_open(datetime(2026, 2, 13, 10)) is None


# --- properties ------------------------------------------------------------------------------

SCHEDULES = [
    OFFICE,
    WeeklySchedule.parse({"daily": "20:00-08:00"}),
    WeeklySchedule.parse({"mon-fri": ["08:30-12:00", "13:30-17:30"], "sat": "09:00-12:00",
                          "sun": "22:00-02:00"}),
    WeeklySchedule.parse({"daily": "00:00-24:00"}),
]
MOMENTS = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 12, 31, 23, 59))


@given(moment=MOMENTS, which=st.integers(0, len(SCHEDULES) - 1))
def test_status_never_raises_and_holiday_iff_calendar_says_so(moment: datetime,
                                                             which: int) -> None:
    status = SCHEDULES[which].status(moment, CHINA)
    assert status in ("open", "closed", "holiday")
    assert (status == "holiday") == CHINA.is_holiday(moment.date())


@given(moment=MOMENTS, which=st.integers(0, len(SCHEDULES) - 1))
def test_next_change_is_the_first_flip(moment: datetime, which: int) -> None:
    schedule = SCHEDULES[which]
    now = schedule.status(moment, CHINA)
    flip = schedule.next_change(moment, CHINA)
    if flip is None:
        return
    assert moment < flip <= moment + timedelta(days=8)
    assert schedule.status(flip, CHINA) != now
    just_before = flip - timedelta(microseconds=1)
    assert schedule.status(just_before, CHINA) == now
