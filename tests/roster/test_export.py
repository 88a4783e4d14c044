"""Roster exports parsed back: iCalendar, CSV and the Excel workbook, field by field."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from icalendar import Calendar
from openpyxl import load_workbook

from hotline.errors import RosterError
from hotline.ivr.calendar import HolidayCalendar
from hotline.roster.export import CSV_HEADER, rows, to_csv, to_ics, to_xlsx
from hotline.roster.model import (
    Assignment,
    Lawyer,
    Line,
    Need,
    ShiftTemplate,
    Slot,
    Templates,
    expand,
)

ROOT = Path(__file__).resolve().parents[2]
TZ = ZoneInfo("Asia/Shanghai")
STAMP = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
ALL = ("workday", "weekend", "holiday")

LINES = {"main": Line("main", "主线"), "late": Line("late", "夜间专线"),
         "dialect": Line("dialect", "方言席")}
TEMPLATES = Templates(LINES, (
    ShiftTemplate("N", "夜班", "main", time(0), time(8), dict.fromkeys(ALL, Need(1)),
                  night=True, remote=True),
    ShiftTemplate("D", "白班", "main", time(8), time(16), dict.fromkeys(ALL, Need(1))),
    # A night that crosses midnight: belongs to the day it starts.
    ShiftTemplate("X", "长夜班", "late", time(20), time(8), dict.fromkeys(ALL, Need(1)),
                  night=True),
    ShiftTemplate("D", "方言白班", "dialect", time(8), time(16), {"workday": Need(1)}),
))
LAWYERS = [
    Lawyer("L1", "张三", "甲律师事务所", max_shifts=16),
    Lawyer("L2", "李四", "乙律师事务所"),
    Lawyer("L3", "王五", "甲律师事务所"),
    Lawyer("L4", "赵六", "丙律师事务所"),
]
ASSIGNMENTS = [
    Assignment("2026-12-05/main/D", "L1"),
    Assignment("2026-12-04/main/N", "L1", remote=True),
    Assignment("2026-12-04/main/D", "L2"),
    Assignment("2026-12-04/late/X", "L1"),
    Assignment("2026-12-04/dialect/D", "L3"),
    Assignment("2026-12-05/main/N", "L9", remote=True),  # no longer on the lawyers' list
]


@pytest.fixture(scope="module")
def china() -> HolidayCalendar:
    path = ROOT / "ivr_flows" / "calendars" / "china.yaml"
    return HolidayCalendar.from_data(yaml.safe_load(path.read_text(encoding="utf-8")), "china")


@pytest.fixture(scope="module")
def slots(china: HolidayCalendar) -> list[Slot]:
    # Friday 4 and Saturday 5 December 2026.
    return expand(TEMPLATES, [date(2026, 12, 4), date(2026, 12, 5)], TZ, china)


def events(data: bytes) -> dict[str, dict[str, object]]:
    cal = Calendar.from_ical(data)
    out = {}
    for event in cal.walk("VEVENT"):
        out[str(event["UID"])] = {
            "start": event.decoded("DTSTART"), "end": event.decoded("DTEND"),
            "summary": str(event["SUMMARY"]), "description": str(event["DESCRIPTION"]),
            "stamp": event.decoded("DTSTAMP"),
        }
    return out


# --- iCalendar -------------------------------------------------------------------------------


def test_ics_has_one_event_per_assignment_in_the_hotline_zone(slots: list[Slot]) -> None:
    data = to_ics(slots, ASSIGNMENTS, LAWYERS, tz=TZ, lines=LINES, stamp=STAMP)
    cal = Calendar.from_ical(data)
    assert str(cal["VERSION"]) == "2.0"
    assert str(cal["X-WR-CALNAME"]) == "12348 值班表"
    assert str(cal["X-WR-TIMEZONE"]) == "Asia/Shanghai"
    # A VTIMEZONE that every event's TZID refers to (Google and Outlook need it).
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Asia/Shanghai"]
    text = data.decode("utf-8")
    assert "DTSTART;TZID=Asia/Shanghai:20261204T200000" in text
    assert "DTEND;TZID=Asia/Shanghai:20261205T080000" in text
    found = events(data)
    assert sorted(found) == [
        "2026-12-04/dialect/D/L3@hotline12348",
        "2026-12-04/late/X/L1@hotline12348",
        "2026-12-04/main/D/L2@hotline12348",
        "2026-12-04/main/N/L1@hotline12348",
        "2026-12-05/main/D/L1@hotline12348",
        "2026-12-05/main/N/L9@hotline12348",
    ]
    night = found["2026-12-04/main/N/L1@hotline12348"]
    assert night == {
        "start": datetime(2026, 12, 4, 0, 0, tzinfo=TZ),
        "end": datetime(2026, 12, 4, 8, 0, tzinfo=TZ),
        "summary": "12348 值班: 夜班 N [main] 张三",
        "description": "律师: 张三 (L1), 甲律师事务所\n线路: 主线 (main)\n班次: 夜班 N (工作日)\n"
                       "值守方式: 远程 (本人电话)",
        "stamp": STAMP,
    }
    assert night["start"].tzinfo.key == "Asia/Shanghai"  # type: ignore[attr-defined]
    crossing = found["2026-12-04/late/X/L1@hotline12348"]
    assert (crossing["start"], crossing["end"]) == (datetime(2026, 12, 4, 20, tzinfo=TZ),
                                                    datetime(2026, 12, 5, 8, tzinfo=TZ))
    assert crossing["description"] == ("律师: 张三 (L1), 甲律师事务所\n线路: 夜间专线 (late)\n"
                                       "班次: 长夜班 X (工作日)\n值守方式: 现场")
    saturday = found["2026-12-05/main/D/L1@hotline12348"]
    assert "班次: 白班 D (周末)" in str(saturday["description"])
    gone = found["2026-12-05/main/N/L9@hotline12348"]
    assert gone["summary"] == "12348 值班: 夜班 N [main] L9"
    assert str(gone["description"]).startswith("律师: L9 (L9)\n")


def test_ics_for_one_lawyer(slots: list[Slot]) -> None:
    data = to_ics(slots, ASSIGNMENTS, LAWYERS, tz=TZ, work_id="L1", stamp=STAMP)
    cal = Calendar.from_ical(data)
    assert str(cal["X-WR-CALNAME"]) == "12348 值班表 - 张三"
    found = events(data)
    assert sorted(found) == ["2026-12-04/late/X/L1@hotline12348",
                             "2026-12-04/main/N/L1@hotline12348",
                             "2026-12-05/main/D/L1@hotline12348"]
    # Their own calendar: no name in the title; without `lines` the code stands for the line.
    assert found["2026-12-04/main/N/L1@hotline12348"]["summary"] == "12348 值班: 夜班 N [main]"
    assert found["2026-12-05/main/D/L1@hotline12348"]["description"] == (
        "线路: main\n班次: 白班 D (周末)\n值守方式: 现场")
    assert events(to_ics(slots, ASSIGNMENTS, LAWYERS, tz=TZ, work_id="L4", stamp=STAMP)) == {}


def test_ics_is_stable_and_falls_back_to_utc(slots: list[Slot]) -> None:
    once = to_ics(slots, ASSIGNMENTS, LAWYERS, tz=TZ, stamp=STAMP)
    assert to_ics(list(reversed(slots)), list(reversed(ASSIGNMENTS)), LAWYERS, tz=TZ,
                  stamp=STAMP) == once
    fixed = timezone(timedelta(hours=8))  # no IANA name: no VTIMEZONE, times in UTC
    data = to_ics(slots, ASSIGNMENTS, LAWYERS, tz=fixed, work_id="L1", stamp=STAMP)
    assert b"VTIMEZONE" not in data
    assert b"DTSTART:20261203T160000Z" in data
    night = events(data)["2026-12-04/main/N/L1@hotline12348"]
    assert night["start"] == datetime(2026, 12, 4, 0, 0, tzinfo=TZ)
    assert events(to_ics(slots, ASSIGNMENTS, LAWYERS, tz=TZ))  # DTSTAMP defaults to now


# --- CSV -------------------------------------------------------------------------------------

EXPECTED_ROWS = [
    ["2026-12-04", "周五", "main", "N", "夜班", "2026-12-04 00:00", "2026-12-04 08:00",
     "L1", "张三", "甲律师事务所", "是"],
    ["2026-12-04", "周五", "dialect", "D", "方言白班", "2026-12-04 08:00", "2026-12-04 16:00",
     "L3", "王五", "甲律师事务所", "否"],
    ["2026-12-04", "周五", "main", "D", "白班", "2026-12-04 08:00", "2026-12-04 16:00",
     "L2", "李四", "乙律师事务所", "否"],
    ["2026-12-04", "周五", "late", "X", "长夜班", "2026-12-04 20:00", "2026-12-05 08:00",
     "L1", "张三", "甲律师事务所", "否"],
    ["2026-12-05", "周六", "main", "N", "夜班", "2026-12-05 00:00", "2026-12-05 08:00",
     "L9", "", "", "是"],
    ["2026-12-05", "周六", "main", "D", "白班", "2026-12-05 08:00", "2026-12-05 16:00",
     "L1", "张三", "甲律师事务所", "否"],
]


def test_csv_rows_with_a_bom(slots: list[Slot], tmp_path: Path) -> None:
    text = to_csv(slots, ASSIGNMENTS, LAWYERS, tz=TZ)
    assert text.startswith("\ufeff")
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8", newline="")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    with path.open(encoding="utf-8-sig", newline="") as f:
        parsed = list(csv.reader(f))
    assert parsed[0] == list(CSV_HEADER) == ["日期", "星期", "线路", "班次代码", "班次", "开始",
                                             "结束", "工号", "姓名", "律所", "远程"]
    assert parsed[1:] == EXPECTED_ROWS


def test_csv_for_one_lawyer(slots: list[Slot]) -> None:
    text = to_csv(slots, ASSIGNMENTS, LAWYERS, tz=TZ, work_id="L1")
    parsed = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert parsed[1:] == [r for r in EXPECTED_ROWS if r[7] == "L1"]
    assert len(parsed) == 4
    empty = to_csv(slots, ASSIGNMENTS, LAWYERS, tz=TZ, work_id="L4")
    assert list(csv.reader(io.StringIO(empty.removeprefix("\ufeff")))) == [list(CSV_HEADER)]


def test_assignment_to_an_unknown_slot(slots: list[Slot]) -> None:
    with pytest.raises(RosterError) as info:
        rows(slots, [Assignment("2026-12-31/main/N", "L1")], LAWYERS, tz=TZ)
    assert info.value.code == "roster.not_found"
    assert info.value.params == {"what": "班次", "key": "2026-12-31/main/N"}


# --- Excel -----------------------------------------------------------------------------------


def test_xlsx_workbook(slots: list[Slot], tmp_path: Path) -> None:
    path = tmp_path / "roster.xlsx"
    to_xlsx(slots, ASSIGNMENTS, LAWYERS, path, tz=TZ)
    book = load_workbook(path)
    assert book.sheetnames == ["班表", "明细", "统计"]

    grid = book["班表"]
    assert grid.freeze_panes == "D3"
    assert [[c.value for c in row] for row in grid.iter_rows(min_row=1, max_row=2)] == [
        ["工号", "姓名", "律所", "12/4", "12/5"],
        [None, None, None, "周五", "周六"],
    ]
    assert {str(r) for r in grid.merged_cells.ranges} == {"A1:A2", "B1:B2", "C1:C2"}
    body = [[c.value for c in row] for row in grid.iter_rows(min_row=3)]
    assert body == [
        # D exists on two lines, so the grid names the line; a day's shifts in time order.
        ["L1", "张三", "甲律师事务所", "N/X", "D@main"],
        ["L2", "李四", "乙律师事务所", "D@main", None],
        ["L3", "王五", "甲律师事务所", "D@dialect", None],
        ["L4", "赵六", "丙律师事务所", None, None],
        ["L9", None, None, None, "N"],  # assigned but no longer listed
    ]
    friday, saturday = grid["D3"], grid["E3"]
    assert friday.fill.fill_type is None
    assert saturday.fill.fill_type == "solid"
    assert saturday.fill.fgColor.rgb.endswith("FFF2CC")
    assert grid["E1"].fill.fgColor.rgb.endswith("FFF2CC")
    assert grid["D1"].font.bold

    details = book["明细"]
    assert [[c.value or "" for c in row] for row in details.iter_rows()] == [
        list(CSV_HEADER), *EXPECTED_ROWS]
    assert details.freeze_panes == "A2"

    stats = book["统计"]
    assert [[c.value for c in row] for row in stats.iter_rows()] == [
        ["工号", "姓名", "律所", "班次", "工时", "夜班", "周末及节假日", "节假日", "远程", "上限"],
        ["L1", "张三", "甲律师事务所", 3, 28, 2, 1, 0, 1, 16],
        ["L2", "李四", "乙律师事务所", 1, 8, 0, 0, 0, 0, None],
        ["L3", "王五", "甲律师事务所", 1, 8, 0, 0, 0, 0, None],
        ["L4", "赵六", "丙律师事务所", 0, 0, 0, 0, 0, 0, None],
        ["L9", None, None, 1, 8, 1, 1, 0, 1, None],
    ]


def test_xlsx_for_one_lawyer_shades_holidays(china: HolidayCalendar, tmp_path: Path) -> None:
    # 30 September is a workday, 1-2 October are 国庆节 holidays; 3 October has no slot
    # assigned to anyone but is a holiday too.
    slots = expand(TEMPLATES, [date(2026, 9, 30) + timedelta(days=i) for i in range(4)], TZ,
                   china)
    assignments = [Assignment("2026-09-30/main/D", "L2"), Assignment("2026-10-01/main/D", "L2"),
                   Assignment("2026-10-02/late/X", "L2"), Assignment("2026-10-01/main/N", "L1")]
    path = tmp_path / "l2.xlsx"
    to_xlsx(slots, assignments, LAWYERS, path, tz=TZ, work_id="L2")
    book = load_workbook(path)
    grid = book["班表"]
    assert [c.value for c in grid[1]] == ["工号", "姓名", "律所", "9/30", "10/1", "10/2", "10/3"]
    assert [c.value for c in grid[2]][3:] == ["周三", "周四", "周五", "周六"]
    # The dialect line's D runs on 30 September, so the main line's D is named too.
    assert [[c.value for c in row] for row in grid.iter_rows(min_row=3)] == [
        ["L2", "李四", "乙律师事务所", "D@main", "D@main", "X", None]]
    assert grid["D3"].fill.fill_type is None
    for cell in ("E1", "E3", "F3", "G3"):
        assert grid[cell].fill.fgColor.rgb.endswith("F8CBAD"), cell
    stats = [[c.value for c in row] for row in book["统计"].iter_rows(min_row=2)]
    assert stats == [["L2", "李四", "乙律师事务所", 3, 28, 1, 2, 2, 0, None]]
    details = [[c.value for c in row] for row in book["明细"].iter_rows(min_row=2)]
    assert [(r[0], r[3], r[5], r[6]) for r in details] == [
        ("2026-09-30", "D", "2026-09-30 08:00", "2026-09-30 16:00"),
        ("2026-10-01", "D", "2026-10-01 08:00", "2026-10-01 16:00"),
        ("2026-10-02", "X", "2026-10-02 20:00", "2026-10-03 08:00"),
    ]
