"""The roster's data: lines, shift templates, concrete shifts (slots), lawyers, assignments.

Pure values (frozen dataclasses), no I/O and no clock. The solver (:mod:`.solver`), the rule
checker (:mod:`.rules`), staffing (:mod:`.staffing`), exports and the running server's duty
logic (:mod:`.duty`) all speak these types; the ledger (:mod:`hotline.store.roster`) turns
rows into them and back.

Times are aware datetimes in the hotline's time zone; a slot's ``date`` is the local date its
shift starts on (a night shift 00:00–08:00 on the 3rd belongs to the 3rd; one 20:00–08:00
belongs to the day it starts).
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Literal

from hotline.domain import Language
from hotline.ivr.calendar import HolidayCalendar

DayKind = Literal["workday", "weekend", "holiday"]
DAY_KINDS: tuple[DayKind, ...] = ("workday", "weekend", "holiday")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
KIND_ZH = {"workday": "工作日", "weekend": "周末", "holiday": "节假日"}


@dataclass(frozen=True)
class Need:
    """Seats a shift must fill: head-count, and minimum heads per skill and per language.

    ``skills`` counts lawyers whose proficiency in the skill is at least
    ``min_proficiency``; ``languages`` counts lawyers who speak the language or dialect.
    """

    lawyers: int
    skills: Mapping[str, int] = field(default_factory=dict)
    languages: Mapping[Language, int] = field(default_factory=dict)
    min_proficiency: int = 1

    def with_lawyers(self, lawyers: int) -> Need:
        """The same need with another head-count (staffing raised it)."""
        return Need(lawyers, self.skills, self.languages, self.min_proficiency)


@dataclass(frozen=True)
class Line:
    """A service line (主线, 方言席, 中小企业专线) with who may staff it."""

    code: str
    name: str
    languages: frozenset[Language] = frozenset()  # every lawyer on it speaks one of these
    min_practice_years: int = 0  # SME line: ≥ 3 years of practice


@dataclass(frozen=True)
class ShiftTemplate:
    """A recurring shift of a line: when it runs and what it needs per kind of day.

    ``needs`` maps a day kind to the need on such days; a kind missing from it means the
    shift does not run on those days. ``end`` at or before ``start`` crosses midnight.
    ``remote``: a night shift that may be served from the lawyer's own phone.
    """

    code: str
    name: str
    line: str
    start: time
    end: time
    needs: Mapping[DayKind, Need]
    night: bool = False
    remote: bool = False
    weekdays: frozenset[int] = frozenset(range(7))  # 0 = Monday; further narrows the days

    @property
    def hours(self) -> float:
        """Length in hours."""
        start = self.start.hour * 60 + self.start.minute
        end = self.end.hour * 60 + self.end.minute
        return ((end - start) % (24 * 60) or 24 * 60) / 60


@dataclass(frozen=True)
class Templates:
    """A roster's shift catalogue (``roster/shifts.yaml``)."""

    lines: Mapping[str, Line]
    shifts: tuple[ShiftTemplate, ...]

    def shift(self, code: str, line: str) -> ShiftTemplate | None:
        """The template ``code`` of ``line``, if any."""
        for s in self.shifts:
            if s.code == code and s.line == line:
                return s
        return None


@dataclass(frozen=True)
class Slot:
    """One concrete shift: a template on a date, with its final need."""

    date: date
    line: str
    code: str
    name: str
    start: datetime
    end: datetime
    need: Need
    kind: DayKind = "workday"
    night: bool = False
    remote: bool = False

    @property
    def id(self) -> str:
        """Stable key: ``2026-12-03/main/N``."""
        return f"{self.date.isoformat()}/{self.line}/{self.code}"

    @property
    def weekend_or_holiday(self) -> bool:
        """Counts for the fairness of weekends and holidays."""
        return self.kind != "workday"

    def label(self) -> str:
        """Operators' name: ``12月3日(周四) 夜班 N [main]``."""
        return (f"{self.date.month}月{self.date.day}日({WEEKDAYS_ZH[self.date.weekday()]}) "
                f"{self.name} {self.code} [{self.line}]")

    def covers(self, at: datetime) -> bool:
        """Whether the shift runs at ``at``."""
        return self.start <= at < self.end


@dataclass(frozen=True)
class Period:
    """A span a lawyer cannot work (leave, court, illness)."""

    start: datetime
    end: datetime
    reason: str = ""

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether the period overlaps ``[start, end)``."""
        return self.start < end and start < self.end


@dataclass(frozen=True)
class Lawyer:
    """A duty lawyer as the roster sees them.

    ``off_weekdays`` is recurring unavailability (0 = Monday); ``prefer`` / ``avoid`` are
    shift codes or weekday names (``mon``…) the lawyer likes or dislikes (soft);
    ``lines`` limits the lines they serve (empty = any line they qualify for).
    ``max_shifts`` / ``max_consecutive_nights`` of None take the rules' defaults.
    """

    work_id: str
    name: str = ""
    firm: str = ""
    skills: Mapping[str, int] = field(default_factory=dict)
    languages: frozenset[Language] = frozenset({Language.MANDARIN})
    max_shifts: int | None = None
    max_consecutive_nights: int | None = None
    unavailable: tuple[Period, ...] = ()
    off_weekdays: frozenset[int] = frozenset()
    prefer: frozenset[str] = frozenset()
    avoid: frozenset[str] = frozenset()
    remote_night: bool = False
    practice_years: float | None = None
    lines: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Rules:
    """The hard rules' parameters and the soft goals' weights."""

    min_rest_hours: float = 11.0
    max_consecutive_nights: int = 3  # when a lawyer has none of their own
    max_shifts: int = 22  # per month, when a lawyer has none of their own
    # Soft weights (the objective is minimised).
    w_fair_shifts: int = 10  # spread (max − min) of shifts per lawyer
    w_fair_nights: int = 20  # spread of night shifts
    w_fair_weekends: int = 20  # spread of weekend and holiday shifts
    w_fair_firms: int = 5  # firms' share of shifts against their share of lawyers
    w_avoid: int = 8  # each shift a lawyer asked to avoid
    w_prefer: int = 3  # each preferred shift (a bonus)
    w_continuity: int = 1  # each change of shift code from one working day to the next
    w_change: int = 1000  # re-plan: each assignment that differs from the published roster


@dataclass(frozen=True)
class Assignment:
    """A lawyer on a slot; ``remote`` = night duty from the lawyer's own phone."""

    slot_id: str
    work_id: str
    remote: bool = False


@dataclass(frozen=True)
class Problem:
    """Everything the solver needs for one period (usually a month).

    ``fixed`` assignments are kept as they are (days already worked); ``previous`` is the
    published roster a re-plan should change as little as possible.
    """

    slots: tuple[Slot, ...]
    lawyers: tuple[Lawyer, ...]
    lines: Mapping[str, Line] = field(default_factory=dict)
    rules: Rules = Rules()
    fixed: tuple[Assignment, ...] = ()
    previous: tuple[Assignment, ...] = ()
    # Slots of the period just before (already worked) that bear on rest and night rules.
    history: tuple[tuple[Slot, str], ...] = ()


@dataclass(frozen=True)
class Violation:
    """One broken hard rule; ``code`` is stable (``roster.rest`` …), ``message`` Chinese."""

    code: str
    message: str
    slot_id: str | None = None
    work_id: str | None = None


@dataclass(frozen=True)
class Solution:
    """A solved roster with how good it is."""

    assignments: tuple[Assignment, ...]
    status: str  # optimal / feasible
    objective: float
    bound: float
    seconds: float
    figures: Mapping[str, float] = field(default_factory=dict)  # fairness, preferences …
    changes: int = 0  # assignments that differ from ``Problem.previous``


# --- days and slots ----------------------------------------------------------------------


def day_kind(d: date, holidays: HolidayCalendar | None) -> DayKind:
    """Holiday (法定节假日), weekend (not an adjusted working day) or workday."""
    if holidays is not None and holidays.is_holiday(d):
        return "holiday"
    if d.weekday() >= 5 and not (holidays is not None and holidays.is_adjusted_workday(d)):
        return "weekend"
    return "workday"


def month_days(year: int, month: int) -> list[date]:
    """Every date of a month."""
    return [date(year, month, d) for d in range(1, _calendar.monthrange(year, month)[1] + 1)]


def expand(templates: Templates, days: Iterable[date], tz: tzinfo,
           holidays: HolidayCalendar | None = None) -> list[Slot]:
    """The concrete shifts of ``days``, in time order."""
    slots = []
    for d in days:
        kind = day_kind(d, holidays)
        for t in templates.shifts:
            need = t.needs.get(kind)
            if need is None or need.lawyers <= 0 or d.weekday() not in t.weekdays:
                continue
            start = datetime.combine(d, t.start, tz)
            slots.append(Slot(d, t.line, t.code, t.name, start,
                              start + timedelta(hours=t.hours), need, kind, t.night, t.remote))
    return sorted(slots, key=lambda s: (s.start, s.line, s.code))


def hours_of(slot: Slot) -> Iterator[datetime]:
    """The local whole hours a slot covers (for coverage against the hourly need)."""
    at = slot.start.replace(minute=0, second=0, microsecond=0)
    while at < slot.end:
        if at + timedelta(hours=1) > slot.start:
            yield at
        at += timedelta(hours=1)


def may_serve(lawyer: Lawyer, slot: Slot, line: Line | None) -> str | None:
    """Why ``lawyer`` can never take ``slot`` (a rule code), or None if they may.

    Codes: ``roster.line`` (not on this line / language / years of practice),
    ``roster.unavailable`` (leave or a recurring day off), ``roster.remote`` (a night
    shift needing someone on site when only remote duty is allowed is not modelled: remote
    nights simply need ``remote_night``).
    """
    if lawyer.lines and slot.line not in lawyer.lines:
        return "roster.line"
    if line is not None:
        if line.languages and not (line.languages & lawyer.languages):
            return "roster.line"
        if line.min_practice_years and (lawyer.practice_years or 0) < line.min_practice_years:
            return "roster.line"
    if slot.date.weekday() in lawyer.off_weekdays:
        return "roster.unavailable"
    if any(p.overlaps(slot.start, slot.end) for p in lawyer.unavailable):
        return "roster.unavailable"
    if slot.remote and slot.night and not lawyer.remote_night:
        return "roster.remote"
    return None


def rest_conflict(a: Slot, b: Slot, min_rest_hours: float) -> bool:
    """Whether one lawyer cannot work both (overlap, or less rest than the rule between)."""
    first, second = (a, b) if a.start <= b.start else (b, a)
    return second.start < first.end + timedelta(hours=min_rest_hours)
