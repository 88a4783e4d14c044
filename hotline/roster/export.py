"""Export a roster: iCalendar for lawyers' phones, CSV and an Excel workbook for schedulers.

Every export takes the concrete shifts (:class:`~hotline.roster.model.Slot`), the
assignments and the lawyers, optionally narrowed to one lawyer (``work_id``), and shows
times in the hotline's time zone ``tz``. Pure functions of their arguments except
:func:`to_xlsx`, which writes a file, and :func:`to_ics`'s DTSTAMP, which defaults to now.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from hotline.errors import RosterError
from hotline.roster.model import KIND_ZH, WEEKDAYS_ZH, Assignment, DayKind, Lawyer, Line, Slot

__all__ = ["CSV_HEADER", "Row", "rows", "to_csv", "to_ics", "to_xlsx"]

PRODID = "-//hotline12348//roster//ZH"
UID_DOMAIN = "hotline12348"
CSV_HEADER = ("日期", "星期", "线路", "班次代码", "班次", "开始", "结束", "工号", "姓名",
              "律所", "远程")
_STAMP = "%Y-%m-%d %H:%M"
_WEEKEND_FILL = PatternFill("solid", fgColor="FFF2CC")  # light yellow
_HOLIDAY_FILL = PatternFill("solid", fgColor="F8CBAD")  # light red
_HEADER_FILL = PatternFill("solid", fgColor="D9E1F2")
_THIN = Side(style="thin", color="BFBFBF")
_BOX = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)


@dataclass(frozen=True)
class Row:
    """One assignment with its shift and lawyer, times in the hotline's zone."""

    slot: Slot
    lawyer: Lawyer
    remote: bool
    start: datetime
    end: datetime

    @property
    def values(self) -> tuple[str, ...]:
        """The CSV / 明细 cells, in :data:`CSV_HEADER` order."""
        return (self.slot.date.isoformat(), WEEKDAYS_ZH[self.slot.date.weekday()],
                self.slot.line, self.slot.code, self.slot.name,
                self.start.strftime(_STAMP), self.end.strftime(_STAMP),
                self.lawyer.work_id, self.lawyer.name, self.lawyer.firm,
                "是" if self.remote else "否")


def rows(slots: Iterable[Slot], assignments: Iterable[Assignment], lawyers: Iterable[Lawyer],
         *, tz: tzinfo, work_id: str | None = None) -> list[Row]:
    """The assignments joined with their slots and lawyers, in time order.

    A lawyer missing from ``lawyers`` (left the list since) is shown by work id alone.

    Raises:
        RosterError: ``roster.not_found`` for an assignment to a slot not in ``slots``.
    """
    by_id = {s.id: s for s in slots}
    people = {lawyer.work_id: lawyer for lawyer in lawyers}
    out = []
    for a in assignments:
        if work_id is not None and a.work_id != work_id:
            continue
        slot = by_id.get(a.slot_id)
        if slot is None:
            raise RosterError("roster.not_found", what="班次", key=a.slot_id)
        lawyer = people.get(a.work_id) or Lawyer(a.work_id)
        out.append(Row(slot, lawyer, a.remote, slot.start.astimezone(tz),
                       slot.end.astimezone(tz)))
    return sorted(out, key=lambda r: (r.start, r.slot.line, r.slot.code, r.lawyer.work_id))


# --- iCalendar -------------------------------------------------------------------------------


def to_ics(slots: Iterable[Slot], assignments: Iterable[Assignment], lawyers: Iterable[Lawyer],
           *, tz: tzinfo, work_id: str | None = None, lines: Mapping[str, Line] | None = None,
           stamp: datetime | None = None) -> bytes:
    """An iCalendar file (RFC 5545) with one VEVENT per assignment.

    Times carry ``TZID`` with a matching VTIMEZONE when ``tz`` is an IANA zone (Google
    Calendar and Outlook both import that), else they are written in UTC. UIDs are stable
    (``2026-12-03/main/N/L1001@hotline12348``), so importing a re-planned roster updates
    events instead of duplicating them.

    Args:
        slots: The concrete shifts the assignments refer to.
        assignments: Who works which slot.
        lawyers: Names and firms for the descriptions.
        tz: The hotline's time zone.
        work_id: Only this lawyer's shifts (their personal calendar).
        lines: Line names for descriptions (the line code is shown without them).
        stamp: DTSTAMP of every event (default: now).
    """
    people = list(lawyers)
    found = rows(slots, assignments, people, tz=tz, work_id=work_id)
    zone = tz if isinstance(tz, ZoneInfo) and tz.key else None
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    title = "12348 值班表"
    if work_id is not None:
        who = next((p.name for p in people if p.work_id == work_id and p.name), work_id)
        title += f" - {who}"
    cal.add("x-wr-calname", title)
    if zone is not None:
        cal.add("x-wr-timezone", zone.key)
    dtstamp = (stamp or datetime.now(UTC)).astimezone(UTC)
    for row in found:
        cal.add_component(_event(row, zone, lines or {}, dtstamp, with_name=work_id is None))
    if zone is not None and found:
        cal.add_missing_timezones(first_date=found[0].start.date() - timedelta(days=1),
                                  last_date=found[-1].end.date() + timedelta(days=2))
    return bytes(cal.to_ical())


def _event(row: Row, zone: ZoneInfo | None, lines: Mapping[str, Line], stamp: datetime, *,
           with_name: bool) -> Event:
    slot, lawyer = row.slot, row.lawyer
    line = lines.get(slot.line)
    line_text = f"{line.name} ({slot.line})" if line is not None else slot.line
    description = [f"线路: {line_text}",
                   f"班次: {slot.name} {slot.code} ({KIND_ZH[slot.kind]})",
                   f"值守方式: {'远程 (本人电话)' if row.remote else '现场'}"]
    summary = f"12348 值班: {slot.name} {slot.code} [{slot.line}]"
    if with_name:
        description.insert(0, f"律师: {lawyer.name or lawyer.work_id} ({lawyer.work_id})"
                              + (f", {lawyer.firm}" if lawyer.firm else ""))
        summary += f" {lawyer.name or lawyer.work_id}"
    event = Event()
    event.add("uid", f"{slot.id}/{lawyer.work_id}@{UID_DOMAIN}")
    event.add("dtstamp", stamp)
    start, end = (row.start, row.end) if zone is not None else \
        (row.start.astimezone(UTC), row.end.astimezone(UTC))
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary)
    event.add("description", "\n".join(description))
    event.add("categories", ["12348", slot.line])
    event.add("transp", "OPAQUE")
    return event


# --- CSV -------------------------------------------------------------------------------------


def to_csv(slots: Iterable[Slot], assignments: Iterable[Assignment], lawyers: Iterable[Lawyer],
           *, tz: tzinfo, work_id: str | None = None) -> str:
    """One row per assignment (columns :data:`CSV_HEADER`), starting with a UTF-8 BOM.

    The BOM lets Excel open the Chinese text correctly; write the result with
    ``encoding="utf-8", newline=""``. Start and end are local ``YYYY-MM-DD HH:MM`` so a
    shift crossing midnight shows the next day's date at its end.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for row in rows(slots, assignments, lawyers, tz=tz, work_id=work_id):
        writer.writerow(row.values)
    return "\ufeff" + out.getvalue()


# --- Excel -----------------------------------------------------------------------------------


def to_xlsx(slots: Iterable[Slot], assignments: Iterable[Assignment], lawyers: Iterable[Lawyer],
            path: str | Path, *, tz: tzinfo, work_id: str | None = None) -> None:
    """Write a workbook: 班表 (lawyers × days grid), 明细 (the CSV rows), 统计 (per lawyer).

    The grid has a date row and a weekday row, shades weekends and holidays (from the
    slots' day kinds), freezes the headers and the lawyer columns, and shows each day's
    shift codes (``code@line`` where codes repeat across lines). Every listed lawyer gets
    a row, even without shifts; ``work_id`` narrows everything to one lawyer.
    """
    all_slots = list(slots)
    people = [p for p in lawyers if work_id is None or p.work_id == work_id]
    found = rows(all_slots, assignments, people, tz=tz, work_id=work_id)
    known = {p.work_id for p in people}
    for row in found:  # assignments of lawyers no longer listed
        if row.lawyer.work_id not in known:
            known.add(row.lawyer.work_id)
            people.append(row.lawyer)
    book = Workbook()
    grid = book.active
    assert grid is not None
    grid.title = "班表"
    _grid(grid, all_slots, people, found)
    _details(book.create_sheet("明细"), found)
    _stats(book.create_sheet("统计"), people, found)
    book.save(Path(path))


def _day_kinds(slots: Iterable[Slot]) -> dict[date, DayKind]:
    kinds: dict[date, DayKind] = {}
    for s in slots:
        kinds.setdefault(s.date, s.kind)
    return kinds


def _header(cell: Any) -> None:
    cell.font = Font(bold=True)
    cell.fill = _HEADER_FILL
    cell.alignment = Alignment(horizontal="center", vertical="center")
    cell.border = _BOX


def _grid(sheet: Worksheet, slots: list[Slot], people: list[Lawyer], found: list[Row]) -> None:
    kinds = _day_kinds(slots)
    dates = sorted(kinds) or sorted({r.slot.date for r in found})
    days = [dates[0] + timedelta(days=i) for i in range((dates[-1] - dates[0]).days + 1)] \
        if dates else []
    lines_of: dict[str, set[str]] = {}
    for s in slots:
        lines_of.setdefault(s.code, set()).add(s.line)
    fixed = ("工号", "姓名", "律所")
    _put_headers(sheet, fixed, days, kinds)
    cells: dict[tuple[str, date], list[str]] = {}
    for row in found:
        code = row.slot.code if len(lines_of.get(row.slot.code, ())) <= 1 \
            else f"{row.slot.code}@{row.slot.line}"
        cells.setdefault((row.lawyer.work_id, row.slot.date), []).append(code)
    for r, lawyer in enumerate(people, start=3):
        for c, value in enumerate((lawyer.work_id, lawyer.name, lawyer.firm), start=1):
            _set(sheet, r, c, value).border = _BOX
        for c, day in enumerate(days, start=len(fixed) + 1):
            cell = _set(sheet, r, c, "/".join(cells.get((lawyer.work_id, day), [])) or None)
            cell.alignment = Alignment(horizontal="center")
            cell.border = _BOX
            fill = _fill(day, kinds)
            if fill is not None:
                cell.fill = fill
    dims = sheet.column_dimensions
    dims["A"].width = 10
    dims["B"].width = 10
    dims["C"].width = 24
    for c in range(len(fixed) + 1, len(fixed) + len(days) + 1):
        dims[get_column_letter(c)].width = 6
    sheet.freeze_panes = "D3"


def _put_headers(sheet: Worksheet, fixed: tuple[str, ...], days: list[date],
                 kinds: Mapping[date, DayKind]) -> None:
    for c, title in enumerate(fixed, start=1):
        _header(_set(sheet, 1, c, title))
        _header(_set(sheet, 2, c, None))
        sheet.merge_cells(start_row=1, start_column=c, end_row=2, end_column=c)
    for c, day in enumerate(days, start=len(fixed) + 1):
        top = _set(sheet, 1, c, f"{day.month}/{day.day}")
        bottom = _set(sheet, 2, c, WEEKDAYS_ZH[day.weekday()])
        for cell in (top, bottom):
            _header(cell)
            fill = _fill(day, kinds)
            if fill is not None:
                cell.fill = fill


def _fill(day: date, kinds: Mapping[date, DayKind]) -> PatternFill | None:
    kind = kinds.get(day, "weekend" if day.weekday() >= 5 else "workday")
    return {"weekend": _WEEKEND_FILL, "holiday": _HOLIDAY_FILL}.get(kind)


def _set(sheet: Worksheet, row: int, column: int, value: object) -> Any:
    return sheet.cell(row=row, column=column, value=value)


def _details(sheet: Worksheet, found: list[Row]) -> None:
    for c, title in enumerate(CSV_HEADER, start=1):
        _header(_set(sheet, 1, c, title))
    for r, row in enumerate(found, start=2):
        for c, value in enumerate(row.values, start=1):
            _set(sheet, r, c, value)
    widths = (12, 6, 10, 8, 14, 17, 17, 10, 10, 24, 6)
    for c, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(c)].width = width
    sheet.freeze_panes = "A2"


STATS_HEADER = ("工号", "姓名", "律所", "班次", "工时", "夜班", "周末及节假日", "节假日",
                "远程", "上限")


def _stats(sheet: Worksheet, people: list[Lawyer], found: list[Row]) -> None:
    for c, title in enumerate(STATS_HEADER, start=1):
        _header(_set(sheet, 1, c, title))
    for r, lawyer in enumerate(people, start=2):
        mine = [row for row in found if row.lawyer.work_id == lawyer.work_id]
        hours = sum((row.end - row.start).total_seconds() for row in mine) / 3600
        values = (lawyer.work_id, lawyer.name, lawyer.firm, len(mine),
                  int(hours) if hours == int(hours) else round(hours, 1),
                  sum(row.slot.night for row in mine),
                  sum(row.slot.weekend_or_holiday for row in mine),
                  sum(row.slot.kind == "holiday" for row in mine),
                  sum(row.remote for row in mine), lawyer.max_shifts)
        for c, value in enumerate(values, start=1):
            _set(sheet, r, c, value)
    for c, width in enumerate((10, 10, 24, 8, 8, 8, 14, 8, 8, 8), start=1):
        sheet.column_dimensions[get_column_letter(c)].width = width
    sheet.freeze_panes = "A2"
