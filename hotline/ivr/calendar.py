"""Opening hours and public holidays, as pure data and arithmetic (no clock, no files).

An ``hours`` node asks one question: given the caller's local wall time, is the hotline
``open``, ``closed`` or on a public ``holiday``? China moves working days around holidays
(调休): some Saturdays and Sundays become working days, so "weekday → hours" alone is wrong
several times a year. The State Council publishes each year's arrangement late in the year
before, so the calendar is data (``ivr_flows/calendars/*.yaml``) that operators extend, and
:class:`HolidayCalendar` refuses malformed entries at load time rather than mid-call.

Everything here takes the time as an argument, so the engine, the simulator and the tests
can ask about any moment without patching a clock.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

Status = Literal["open", "closed", "holiday"]
KeyPath = tuple[str | int, ...]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
_MINUTES_PER_DAY = 24 * 60
# next_change() looks this far ahead; a week plus a day always sees a weekly flip.
_HORIZON = timedelta(days=8)
# next_open() looks further: the longest holiday (9 days) plus the weekend around it.
_OPEN_HORIZON = timedelta(days=21)
# The longest Chinese public holiday so far is 9 days (春节 2026); a longer span is a typo.
_MAX_HOLIDAY_DAYS = 15
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


class CalendarDataError(ValueError):
    """A calendar file is malformed; ``problems`` lists every bad entry, not just the first.

    Each problem is ``(path, message)`` where ``path`` is the key path inside the YAML
    document (e.g. ``("years", 2026, "holidays", 1, "to")``) so the loader can turn it into
    ``file:line`` and show the bare message; ``str()`` prefixes each message with its dotted
    path (``years.2026.holidays[1].to: ...``) for callers that only want text.
    """

    def __init__(self, problems: list[tuple[KeyPath, str]]) -> None:
        self.problems = problems
        self.path: KeyPath = problems[0][0] if problems else ()
        super().__init__("\n".join(
            f"{dotted(path)}: {message}" if path else message for path, message in problems))


def dotted(path: KeyPath) -> str:
    """A key path as operators read it: ``years.2026.holidays[1].to``."""
    where = ""
    for i, part in enumerate(path):
        if isinstance(part, int) and i > 0 and path[i - 1] in ("holidays", "workdays"):
            where += f"[{part}]"
        else:
            where += f".{part}" if where else str(part)
    return where


@dataclass(frozen=True)
class Holiday:
    """One public holiday period (放假), both ends inclusive."""

    name: str
    first: date
    last: date

    def days(self) -> Iterator[date]:
        """Every calendar day of the period, so lookups can be a dict."""
        day = self.first
        while day <= self.last:
            yield day
            day += timedelta(days=1)


@dataclass(frozen=True)
class AdjustedWorkday:
    """A weekend day that is a working day (调休上班) to make up for ``holiday``."""

    day: date
    holiday: str


@dataclass(frozen=True)
class HolidayCalendar:
    """A country's (or province's) holidays and adjusted workdays for the years it covers.

    Build it with :meth:`from_data` so every entry is checked; days of years the calendar
    does not cover are ordinary days, and :meth:`covers` lets the validator warn about that.
    """

    name: str
    years: tuple[int, ...]
    holidays: tuple[Holiday, ...]
    workdays: tuple[AdjustedWorkday, ...]
    _holiday_by_day: dict[date, str] = field(init=False, repr=False, compare=False)
    _workday_set: frozenset[date] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_day = {day: h.name for h in self.holidays for day in h.days()}
        object.__setattr__(self, "_holiday_by_day", by_day)
        object.__setattr__(self, "_workday_set", frozenset(w.day for w in self.workdays))

    @classmethod
    def from_data(cls, data: Any, name: str) -> HolidayCalendar:
        """Check and build a calendar from a parsed calendar YAML document.

        Args:
            data: What ``yaml.safe_load`` returned for the file (dates may also be ISO
                strings, so JSON works too).
            name: The calendar's name as flows refer to it (the file stem); a ``name:`` key
                in the file must agree, so renaming a file cannot silently switch calendars.

        Raises:
            CalendarDataError: A ``ValueError`` listing every malformed entry with its path.
        """
        return _CalendarReader(name).read(data)

    def is_holiday(self, d: date) -> bool:
        """Whether ``d`` is a public holiday (放假日) in this calendar."""
        return _day(d) in self._holiday_by_day

    def holiday_name(self, d: date) -> str | None:
        """The holiday's Chinese name for announcements, or None on other days."""
        return self._holiday_by_day.get(_day(d))

    def is_adjusted_workday(self, d: date) -> bool:
        """Whether ``d`` is a weekend day worked to make up for a holiday (调休上班)."""
        return _day(d) in self._workday_set

    def covers(self, year: int) -> bool:
        """Whether the arrangement for ``year`` has been entered (else holidays are unknown)."""
        return year in self.years


def _day(d: date) -> date:
    # A datetime is a date but never equal to one, so normalise before dict lookups.
    return d.date() if isinstance(d, datetime) else d


class _CalendarReader:
    """Collects every problem in a calendar document before giving up."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.problems: list[tuple[KeyPath, str]] = []

    def bad(self, path: KeyPath, message: str) -> None:
        self.problems.append((path, message))

    def read(self, data: Any) -> HolidayCalendar:
        if not isinstance(data, Mapping):
            raise CalendarDataError([((), "日历文件应为映射, 包含 name 和 years")])
        for key in data:
            if key not in ("name", "years"):
                self.bad((str(key),), "未知的键, 只能是 name 或 years")
        if "name" in data and data["name"] != self.name:
            self.bad(("name",), f"日历名称 {data['name']!r} 与文件名 {self.name!r} 不一致")
        raw_years = data.get("years")
        if not isinstance(raw_years, Mapping) or not raw_years:
            self.bad(("years",), "缺少 years, 应为 年份: {holidays: [...], workdays: [...]}")
            raw_years = {}
        per_year: dict[int, tuple[Any, Mapping[Any, Any], list[Holiday]]] = {}
        taken: dict[date, str] = {}
        for key, body in raw_years.items():
            year = self.year(key)
            if year is None:
                continue
            found = list(self.year_holidays(year, key, body))
            for path, holiday in found:
                clash = sorted({taken[d] for d in holiday.days() if d in taken})
                if clash:
                    self.bad(path, f"{holiday.name} 与 {'、'.join(clash)} 的日期重叠")
                taken.update((d, holiday.name) for d in holiday.days())
            if isinstance(body, Mapping):
                per_year[year] = (key, body, [h for _, h in found])
        workdays: list[AdjustedWorkday] = []
        for year, (key, body, holidays) in per_year.items():
            names = {h.name for h in holidays}
            workdays.extend(self.year_workdays(year, key, body, names, taken))
        if self.problems:
            raise CalendarDataError(self.problems)
        return HolidayCalendar(
            name=self.name,
            years=tuple(sorted(per_year)),
            holidays=tuple(sorted((h for _, _, hs in per_year.values() for h in hs),
                                  key=lambda h: h.first)),
            workdays=tuple(sorted(workdays, key=lambda w: w.day)),
        )

    def year(self, key: Any) -> int | None:
        if isinstance(key, int) and not isinstance(key, bool) and 1949 < key < 2200:
            return key
        if isinstance(key, str) and key.isdigit() and 1949 < int(key) < 2200:
            return int(key)
        self.bad(("years", key), f"年份 {key!r} 无效, 应为四位数年份, 例如 2026")
        return None

    def year_holidays(self, year: int, key: Any,
                      body: Any) -> Iterator[tuple[KeyPath, Holiday]]:
        path: KeyPath = ("years", key)
        if not isinstance(body, Mapping):
            self.bad(path, "应为映射, 包含 holidays 和 workdays")
            return
        for extra in body:
            if extra not in ("holidays", "workdays"):
                self.bad((*path, str(extra)), "未知的键, 只能是 holidays 或 workdays")
        entries = body.get("holidays")
        if not isinstance(entries, list) or not entries:
            self.bad((*path, "holidays"), "应为非空列表, 每项如 {name: 元旦, from: ..., to: ...}")
            return
        for i, entry in enumerate(entries):
            at: KeyPath = (*path, "holidays", i)
            holiday = self.holiday(year, at, entry)
            if holiday is not None:
                yield at, holiday

    def holiday(self, year: int, path: KeyPath, entry: Any) -> Holiday | None:
        if not isinstance(entry, Mapping):
            self.bad(path, f"应为 {{name: 节日, from: 日期, to: 日期}}, 实际为 {entry!r}")
            return None
        for extra in entry:
            if extra not in ("name", "from", "to", "date"):
                self.bad((*path, str(extra)), "未知的键, 只能是 name、from、to 或 date")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            self.bad((*path, "name"), "缺少节日名称 name")
            return None
        if "date" in entry:
            first = last = self.parse_date((*path, "date"), entry["date"])
        else:
            first = self.parse_date((*path, "from"), entry.get("from"))
            last = self.parse_date((*path, "to"), entry.get("to", entry.get("from")))
        if first is None or last is None:
            return None
        if first > last:
            self.bad(path, f"{name}: 开始日期 {first} 晚于结束日期 {last}")
            return None
        if (last - first).days + 1 > _MAX_HOLIDAY_DAYS:
            self.bad(path, f"{name}: {first} 至 {last} 超过 {_MAX_HOLIDAY_DAYS} 天, 请检查日期")
            return None
        if not (self.in_year(year, first) and self.in_year(year, last)):
            self.bad(path, f"{name}: {first} 至 {last} 不在 {year} 年的安排范围内")
            return None
        return Holiday(name.strip(), first, last)

    def year_workdays(self, year: int, key: Any, body: Mapping[Any, Any], names: set[str],
                      holidays: Mapping[date, str]) -> Iterator[AdjustedWorkday]:
        path: KeyPath = ("years", key, "workdays")
        entries = body.get("workdays", [])
        if entries is None:
            return
        if not isinstance(entries, list):
            self.bad(path, "应为列表, 每项如 {date: 2026-01-04, for: 元旦}")
            return
        seen: set[date] = set()
        for i, entry in enumerate(entries):
            at = (*path, i)
            if not isinstance(entry, Mapping) or set(entry) != {"date", "for"}:
                self.bad(at, f"应为 {{date: 日期, for: 节日}}, 实际为 {entry!r}")
                continue
            day = self.parse_date((*at, "date"), entry["date"])
            if day is None:
                continue
            reason = entry["for"]
            if day in seen:
                self.bad(at, f"调休上班日 {day} 重复")
            elif day.weekday() < 5:
                self.bad(at, f"调休上班日 {day} 是{_DAY_ZH[day.weekday()]}, 应为周六或周日")
            elif day in holidays:
                self.bad(at, f"{day} 已是 {holidays[day]} 假期, 不能同时是调休上班日")
            elif not self.in_year(year, day):
                self.bad(at, f"调休上班日 {day} 不在 {year} 年的安排范围内")
            elif reason not in names:
                known = "、".join(sorted(names))
                self.bad((*at, "for"), f"{reason!r} 不是 {year} 年的节日 (现有: {known})")
            else:
                yield AdjustedWorkday(day, str(reason))
            seen.add(day)

    def parse_date(self, path: KeyPath, value: Any) -> date | None:
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
        self.bad(path, f"日期 {value!r} 无效, 应为 YYYY-MM-DD, 例如 2026-01-01")
        return None

    @staticmethod
    def in_year(year: int, day: date) -> bool:
        # Some 元旦 arrangements start in the December before (e.g. 2022-12-31 for 2023).
        return day.year == year or (day.year == year - 1 and day.month == 12)


@dataclass(frozen=True)
class WeeklySchedule:
    """Opening hours per weekday, in minutes since that day's midnight.

    ``days[0]`` is Monday; each entry is a tuple of ``(start, end)`` half-open intervals
    where ``end`` may exceed 1440 for a range that runs past midnight into the next day.
    Days not named in the spec are closed.
    """

    days: tuple[tuple[tuple[int, int], ...], ...]

    @classmethod
    def parse(cls, spec: Mapping[str, str | Sequence[str]]) -> WeeklySchedule:
        """Read the ``weekly`` mapping of an ``hours`` node.

        Keys are ``mon`` … ``sun``, ranges such as ``mon-fri`` or ``sat-sun``, or ``daily``;
        values are ``"08:30-17:30"``, a list of such ranges, ``"closed"`` or
        ``"00:00-24:00"``. A range whose end is before its start (``"20:00-08:00"``) runs
        through midnight into the next morning.

        Raises:
            ValueError: With a Chinese message naming the offending key and value.
        """
        days: list[tuple[tuple[int, int], ...] | None] = [None] * 7
        owner: list[str | None] = [None] * 7
        for raw_key, value in spec.items():
            key = str(raw_key)
            ranges = _parse_ranges(key, value)
            for day in _parse_days(key):
                if owner[day] is not None:
                    raise ValueError(
                        f'营业时间 "{owner[day]}" 与 "{key}" 都包含 '
                        f"{DAY_NAMES[day]} ({_DAY_ZH[day]}), 每天只能写一次"
                    )
                owner[day] = key
                days[day] = ranges
        return cls(tuple(d or () for d in days))

    def status(self, local: datetime, calendar: HolidayCalendar | None = None) -> Status:
        """Open, closed or holiday at the hotline's local wall time ``local``.

        A public holiday is ``"holiday"`` all day, so a flow can play the holiday greeting
        even where it keeps a duty line; an adjusted working day (调休上班) has Monday's
        hours; a range that started the evening before still counts after midnight.
        """
        today = local.date()
        if calendar is not None and calendar.is_holiday(today):
            return "holiday"
        minute = local.hour * 60 + local.minute
        for start, end in self._hours(today, calendar):
            if start <= minute < end:
                return "open"
        for start, end in self._hours(today - timedelta(days=1), calendar):
            if start <= minute + _MINUTES_PER_DAY < end:
                return "open"
        return "closed"

    def next_change(self, local: datetime,
                    calendar: HolidayCalendar | None = None) -> datetime | None:
        """When :meth:`status` next differs from now, within 8 days; None if it never does.

        The result carries ``local``'s tzinfo, so announcements and the engine's timers can
        use it directly.
        """
        now = self.status(local, calendar)
        return self._first(local, calendar, lambda s: s != now, _HORIZON)

    def next_open(self, local: datetime,
                  calendar: HolidayCalendar | None = None) -> datetime | None:
        """When the line next opens, for "我们将于 2月24日 08:30 开始服务".

        Looks up to 21 days ahead so the whole 春节 break is crossed; None when the line is
        open now or does not open in that time.
        """
        if self.status(local, calendar) == "open":
            return None
        return self._first(local, calendar, lambda s: s == "open", _OPEN_HORIZON)

    def _first(self, local: datetime, calendar: HolidayCalendar | None,
               wanted: Callable[[Status], bool], horizon: timedelta) -> datetime | None:
        limit = local + horizon
        for moment in self._boundaries(local, horizon.days + 2):
            if moment > limit:
                break
            if wanted(self.status(moment, calendar)):
                return moment
        return None

    def _boundaries(self, local: datetime, days: int) -> Iterator[datetime]:
        """Every minute at which the status could flip, after ``local``, in order.

        The status is constant between midnights and range edges, so checking only these
        finds the exact flip without scanning minute by minute.
        """
        edges = {0}
        for ranges in self.days:
            for start, end in ranges:
                edges.update((start, end % _MINUTES_PER_DAY))
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        for offset in range(days):
            day = midnight + timedelta(days=offset)
            for minute in sorted(edges):
                moment = day + timedelta(minutes=minute)
                if moment > local:
                    yield moment

    def _hours(self, d: date, calendar: HolidayCalendar | None) -> tuple[tuple[int, int], ...]:
        if calendar is not None:
            if calendar.is_holiday(d):
                return ()
            if calendar.is_adjusted_workday(d):
                return self.days[0]
        return self.days[d.weekday()]


def _parse_days(key: str) -> list[int]:
    name = key.strip().lower()
    if name == "daily":
        return list(range(7))
    parts = name.split("-")
    if len(parts) > 2 or any(p not in DAY_NAMES for p in parts):
        bad = next((p for p in parts if p not in DAY_NAMES), name)
        raise ValueError(
            f'营业时间 "{key}": 未知的星期 "{bad}", '
            "应为 mon tue wed thu fri sat sun 之一、范围 (如 mon-fri) 或 daily"
        )
    first, last = DAY_NAMES.index(parts[0]), DAY_NAMES.index(parts[-1])
    if first > last:
        raise ValueError(f'营业时间 "{key}": 星期范围应从前往后写, 例如 mon-fri 或 sat-sun')
    return list(range(first, last + 1))


def _parse_ranges(key: str, value: Any) -> tuple[tuple[int, int], ...]:
    shown = f'营业时间 "{key}: {value}"'
    if isinstance(value, str) and value.strip().lower() == "closed":
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence) or not items or not all(isinstance(i, str) for i in items):
        raise ValueError(
            f'{shown}: 应为 "HH:MM-HH:MM"、这样的列表或 closed '
            '(YAML 中请给时间加引号, 例如 "08:30-17:30")'
        )
    ranges = sorted(_parse_range(shown, item) for item in items)
    for (s1, e1), (s2, e2) in zip(ranges, ranges[1:], strict=False):
        if s2 < e1:
            raise ValueError(f"{shown}: 时段 {_hhmm(s1)}-{_hhmm(e1)} 与 "
                             f"{_hhmm(s2)}-{_hhmm(e2)} 重叠")
    return tuple(ranges)


def _parse_range(shown: str, text: str) -> tuple[int, int]:
    parts = text.strip().split("-")
    if len(parts) != 2:
        raise ValueError(f'{shown}: "{text}" 应为 HH:MM-HH:MM, 例如 08:30-17:30')
    start, end = (_parse_time(shown, p.strip()) for p in parts)
    if start == _MINUTES_PER_DAY:
        raise ValueError(f'{shown}: 开始时间不能是 24:00, 请写 00:00')
    if start == end or (start == 0 and end == 0):
        raise ValueError(f"{shown}: 开始和结束时间相同; 全天开放请写 00:00-24:00")
    if end < start:
        end += _MINUTES_PER_DAY
    return (start, end)


def _parse_time(shown: str, text: str) -> int:
    match = _TIME.match(text)
    if match:
        hour, minute = int(match[1]), int(match[2])
        if (hour < 24 and minute < 60) or (hour == 24 and minute == 0):
            return hour * 60 + minute
    raise ValueError(f'{shown}: 时间 "{text}" 无效, 应为 HH:MM (00:00 至 24:00), 例如 08:30')


def _hhmm(minute: int) -> str:
    if minute == _MINUTES_PER_DAY:
        return "24:00"
    minute %= _MINUTES_PER_DAY
    return f"{minute // 60:02d}:{minute % 60:02d}"
