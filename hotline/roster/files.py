"""Read the roster's input files: shift templates (``roster/shifts.yaml``) and lawyers.

Both readers check everything before giving up and report every problem at once, each as
``file:line: where: message`` in Chinese, through :class:`~hotline.errors.RosterError`
(``roster.templates`` / ``roster.lawyers`` with ``count``, ``summary`` and ``problems``).
YAML is read with the IVR loader (:mod:`hotline.ivr.loader`), which keeps the line of every
key and value, rejects duplicate keys and refuses empty, huge or non-UTF-8 files; a lawyers
CSV names the physical row of the record instead.

Codes (lines, shifts, skills, languages, weekdays) are the stable English codes the rest of
the hotline stores; skills, languages and weekdays may also be written with their Chinese
names (``劳动争议``, ``粤语``, ``周六``), which are turned into codes here; ``family`` is
read as ``marriage_family``.
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any, TypeVar

from hotline.domain import Category, Language
from hotline.errors import RosterError
from hotline.ivr.loader import Document, Path_, read_file
from hotline.ivr.loader import Problem as LoadProblem
from hotline.ivr.messages import flow_message
from hotline.roster.model import (
    DAY_KINDS,
    KIND_ZH,
    WEEKDAYS,
    WEEKDAYS_ZH,
    DayKind,
    Lawyer,
    Line,
    Need,
    Period,
    ShiftTemplate,
    Templates,
)

__all__ = ["MAX_FILE_BYTES", "SKILLS", "load_lawyers", "load_templates"]

# A roster file beyond this is a mistake (a thousand lawyers fit in a few hundred KB).
MAX_FILE_BYTES = 2_000_000
# Skill codes the hotline knows: the consultation categories plus "general" (综合咨询), as
# hotline.store.users.skill_name names them. A code outside this set is almost always a typo
# that would silently never match a shift's need, so it is refused.
SKILLS: frozenset[str] = frozenset({*(c.value for c in Category), "general"})
# Other spellings accepted for a skill: the Chinese names, and the short "family" some
# hotlines write for 婚姻家庭.
_SKILL_ALIASES = {c.label: c.value for c in Category} | {"综合咨询": "general",
                                                         "family": "marriage_family"}
_LANGUAGE_ZH = {lang.label: lang.value for lang in Language}
_WEEKDAY_ZH = dict(zip(WEEKDAYS_ZH, WEEKDAYS, strict=True)) | {
    "星期" + "一二三四五六日"[i]: WEEKDAYS[i] for i in range(7)}
_CODE = re.compile(r"^[A-Za-z0-9_-]+$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
_LIST_SPLIT = re.compile(r"[;；、,，]")
_MAX_CODE = 32  # shift_templates.code / shifts.code are String(32)
_MAX_LINE = 40  # shifts.line is String(40)
_MAX_WORK_ID = 32
_MAX_PROFICIENCY = 5
_SUMMARY_ITEMS = 3
_DAYS_PER_YEAR = 365.2425
K = TypeVar("K", str, Language)


# --- problems --------------------------------------------------------------------------------


@dataclass
class _Problems:
    """Every problem of one file, kept with its line so they can be shown in file order."""

    file: str
    found: list[tuple[int, int, str]] = field(default_factory=list)

    def add(self, line: int, message: str) -> None:
        self.found.append((line, len(self.found), f"{self.file}:{line}: {message}"))

    def add_loader(self, problems: Iterable[LoadProblem]) -> None:
        for p in problems:
            self.add(p.line, flow_message(p))

    def raise_if_any(self, code: str) -> None:
        if not self.found:
            return
        texts = [text for _, _, text in sorted(self.found)]
        summary = "; ".join(texts[:_SUMMARY_ITEMS])
        if len(texts) > _SUMMARY_ITEMS:
            summary += f"; …… 另有 {len(texts) - _SUMMARY_ITEMS} 处"
        raise RosterError(code, count=len(texts), summary=summary, problems=texts)


def _read_yaml(file: Path, display: str, problems: _Problems) -> Document | None:
    """The IVR loader's document and its problems.

    A value YAML cannot build (``2026-13-01``) stays text, reported by the field's check.
    """
    doc, found = read_file(file, max_bytes=MAX_FILE_BYTES, display=display)
    problems.add_loader(found)
    return doc

def _hint(name: str, known: Iterable[str]) -> str:
    """``, 是否想写 'x'?`` for the closest known name (or a known name containing it)."""
    names = list(known)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if not close and len(name) >= 3:
        close = [n for n in names if name.lower() in n.lower()][:1]
    return f", 是否想写 {close[0]!r}?" if close else ""


def _dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_int(value: Any) -> int | None:
    """An integer from YAML (int) or CSV (digits); None when it is not one."""
    if _is_int(value):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def _as_list(value: Any) -> list[Any] | None:
    """A YAML list, or a CSV/YAML string of items separated by ``;`` ``、`` or ``,``."""
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [item.strip() for item in _LIST_SPLIT.split(value) if item.strip()]
    return None


def _skill_code(value: Any) -> str | None:
    text = str(value).strip()
    return text if text in SKILLS else _SKILL_ALIASES.get(text)


def _language(value: Any) -> Language | None:
    text = str(value).strip()
    code = _LANGUAGE_ZH.get(text, text)
    try:
        return Language(code)
    except ValueError:
        return None


def _weekday(value: Any) -> int | None:
    text = str(value).strip()
    text = _WEEKDAY_ZH.get(text, text.lower())
    return WEEKDAYS.index(text) if text in WEEKDAYS else None


def _weekday_set(value: Any) -> tuple[frozenset[int], list[str]]:
    """Weekdays from ``[mon, sat]``, ``mon-fri`` ranges or Chinese names; plus the bad items."""
    items = _as_list(value)
    if items is None:
        return frozenset(), [repr(value)]
    days: set[int] = set()
    bad: list[str] = []
    for item in items:
        text = str(item).strip()
        if "-" in text:
            first, _, last = text.partition("-")
            a, b = _weekday(first), _weekday(last)
            if a is None or b is None or a > b:
                bad.append(text)
            else:
                days.update(range(a, b + 1))
            continue
        day = _weekday(text)
        if day is None:
            bad.append(text)
        else:
            days.add(day)
    return frozenset(days), bad


_WEEKDAY_HELP = "应为 mon tue wed thu fri sat sun (或 周一…周日), 也可写范围 mon-fri"


# --- shift templates -------------------------------------------------------------------------

_TOP_KEYS = ("lines", "shifts")
_LINE_KEYS = ("name", "languages", "min_practice_years")
_SHIFT_KEYS = ("code", "name", "line", "start", "end", "night", "remote", "need", "weekdays")
_SHIFT_REQUIRED = ("code", "name", "line", "start", "end", "need")
_NEED_KEYS = ("lawyers", "skills", "languages", "min_proficiency")


class _YamlChecker:
    """Problems located in a YAML document by key path."""

    def __init__(self, problems: _Problems, doc: Document) -> None:
        self.problems = problems
        self.doc = doc

    def bad(self, path: Path_, where: str, message: str, *, key: bool = False) -> None:
        line, _ = self.doc.where(path, key=key)
        self.problems.add(line, f"{where}: {message}" if where else message)

    def keys(self, data: Mapping[str, Any], path: Path_, where: str,
             allowed: Sequence[str], required: Sequence[str] = ()) -> None:
        """Unknown keys (with a did-you-mean) and missing required ones."""
        for key in data:
            if key not in allowed:
                self.bad((*path, key), where, f"未知的键 {key!r}{_hint(key, allowed)} "
                                              f"(可用: {', '.join(allowed)})", key=True)
        for key in required:
            if key not in data:
                self.bad(path, where, f"缺少必填项 {key!r}")

    def mapping(self, value: Any, path: Path_, where: str, expected: str) -> bool:
        if isinstance(value, dict):
            return True
        self.bad(path, where, f"应为映射 (键: 值), {expected}, 实际为 {value!r}")
        return False


def load_templates(path: str | Path) -> Templates:
    """Read and check a shift-template file (``roster/shifts.yaml``).

    Raises:
        RosterError: ``roster.templates`` with ``count``, ``summary`` and ``problems``
            (every problem found, as ``file:line: message``).
    """
    file = Path(path)
    problems = _Problems(str(path))
    doc = _read_yaml(file, str(path), problems)
    templates = None
    if doc is not None:
        templates = _TemplatesReader(_YamlChecker(problems, doc)).read(doc.data)
    problems.raise_if_any("roster.templates")
    assert templates is not None
    return templates


@dataclass
class _Parsed:
    """A shift read from the file, with where it was (for later cross-checks)."""

    template: ShiftTemplate
    path: Path_


class _TemplatesReader:
    def __init__(self, check: _YamlChecker) -> None:
        self.check = check
        self.bad = check.bad

    def read(self, data: Any) -> Templates | None:
        if not self.check.mapping(data, (), "", "包含 lines 和 shifts"):
            return None
        self.check.keys(data, (), "", _TOP_KEYS, _TOP_KEYS)
        lines = self.lines(data.get("lines")) if "lines" in data else {}
        shifts = self.shifts(data.get("shifts"), lines) if "shifts" in data else []
        self.overlaps(shifts)
        return Templates(lines, tuple(p.template for p in shifts))

    # lines

    def lines(self, raw: Any) -> dict[str, Line]:
        if not isinstance(raw, dict) or not raw:
            self.bad(("lines",), "lines", "应为非空映射: 线路代码: {name: 名称, ...}")
            return {}
        out: dict[str, Line] = {}
        for code, body in raw.items():
            line = self.line(code, body)
            if line is not None:
                out[code] = line
        return out

    def line(self, code: str, body: Any) -> Line | None:
        path: Path_ = ("lines", code)
        where = f"线路 {code}"
        ok = self.code(code, path, where, "线路代码", _MAX_LINE, key=True)
        if isinstance(body, str):
            body = {"name": body}
        if not self.check.mapping(body, path, where, "例如 {name: 主线}"):
            return None
        self.check.keys(body, path, where, _LINE_KEYS, ("name",))
        name = body.get("name", code)
        if not isinstance(name, str) or not name.strip():
            self.bad((*path, "name"), where, f"name 应为线路名称, 实际为 {name!r}")
            ok = False
        languages: set[Language] = set()
        raw_languages = body.get("languages", [])
        items = _as_list(raw_languages)
        if items is None:
            self.bad((*path, "languages"), where,
                     f"languages 应为语言列表, 实际为 {raw_languages!r}")
            ok = False
        for i, item in enumerate(items or []):
            language = _language(item)
            if language is None:
                self.bad((*path, "languages", i), where, _unknown_language(item))
                ok = False
            else:
                languages.add(language)
        years = body.get("min_practice_years", 0)
        if not _is_int(years) or years < 0:
            self.bad((*path, "min_practice_years"), where,
                     f"min_practice_years 应为不小于 0 的整数 (年), 实际为 {years!r}")
            ok = False
        if not ok:
            return None
        return Line(code, str(name).strip(), frozenset(languages), int(years))

    def code(self, value: Any, path: Path_, where: str, what: str, limit: int, *,
             key: bool = False) -> bool:
        if isinstance(value, str) and _CODE.match(value) and len(value) <= limit:
            return True
        if isinstance(value, bool):
            hint = " (YAML 会把不加引号的 on/off/yes/no 读成真假值, 请加引号)"
        elif isinstance(value, str) and len(value) > limit:
            hint = f" (最多 {limit} 个字符)"
        else:
            hint = " (只能用字母、数字、- 和 _)"
        self.bad(path, where, f"{what} {value!r} 无效{hint}", key=key)
        return False

    # shifts

    def shifts(self, raw: Any, lines: Mapping[str, Line]) -> list[_Parsed]:
        if not isinstance(raw, list) or not raw:
            self.bad(("shifts",), "shifts", "应为非空列表, 每项是一个班次")
            return []
        out: list[_Parsed] = []
        seen: dict[tuple[str, str], int] = {}
        for i, body in enumerate(raw):
            parsed = self.shift(i, body, lines)
            if parsed is None:
                continue
            t = parsed.template
            if (t.code, t.line) in seen:
                first = seen[(t.code, t.line)]
                self.bad((*parsed.path, "code"), self.label(i, t.code, t.line),
                         f"班次代码 {t.code!r} 在线路 {t.line} 中重复 (第 {first} 行已定义)")
                continue
            seen[(t.code, t.line)] = self.check.doc.where((*parsed.path, "code"))[0]
            out.append(parsed)
        return out

    @staticmethod
    def label(i: int, code: Any, line: Any) -> str:
        if isinstance(code, str) and isinstance(line, str):
            return f"班次 {code} [{line}]"
        return f"shifts[{i}]"

    def shift(self, i: int, body: Any, lines: Mapping[str, Line]) -> _Parsed | None:
        path: Path_ = ("shifts", i)
        if not self.check.mapping(body, path, f"shifts[{i}]", "例如 {code: D, name: 白班, ...}"):
            return None
        where = self.label(i, body.get("code"), body.get("line"))
        self.check.keys(body, path, where, _SHIFT_KEYS, _SHIFT_REQUIRED)
        ok = all(k in body for k in _SHIFT_REQUIRED)
        code = body.get("code")
        if "code" in body:
            ok &= self.code(code, (*path, "code"), where, "班次代码", _MAX_CODE)
        name = body.get("name")
        if "name" in body and (not isinstance(name, str) or not name.strip()):
            self.bad((*path, "name"), where, f"name 应为班次名称, 例如 白班, 实际为 {name!r}")
            ok = False
        line_code = body.get("line")
        line = None
        if "line" in body:
            if isinstance(line_code, str) and line_code in lines:
                line = lines[line_code]
            else:
                known = ", ".join(lines) or "无"
                self.bad((*path, "line"), where, f"没有线路 {line_code!r}"
                         f"{_hint(str(line_code), lines)} (lines 中定义的: {known})")
                ok = False
        start = self.clock(body.get("start"), (*path, "start"), where, end=False) \
            if "start" in body else None
        end = self.clock(body.get("end"), (*path, "end"), where, end=True) \
            if "end" in body else None
        ok &= start is not None and end is not None
        flags = {}
        for flag in ("night", "remote"):
            value = body.get(flag, False)
            if not isinstance(value, bool):
                self.bad((*path, flag), where, f"{flag} 应为 true 或 false, 实际为 {value!r}")
                ok = False
            flags[flag] = bool(value)
        if flags["remote"] and not flags["night"]:
            self.bad((*path, "remote"), where, "remote (居家远程值守) 只适用于夜班, "
                                               "请同时写 night: true")
            ok = False
        weekdays = frozenset(range(7))
        if "weekdays" in body:
            weekdays, wrong = _weekday_set(body["weekdays"])
            if wrong:
                self.bad((*path, "weekdays"), where,
                         f"weekdays 中 {'、'.join(wrong)} 无效, {_WEEKDAY_HELP}")
                ok = False
            elif not weekdays:
                self.bad((*path, "weekdays"), where, "weekdays 为空, 班次将永远不会排出")
                ok = False
        needs = self.needs(body["need"], (*path, "need"), where) if "need" in body else None
        ok &= needs is not None
        if not ok:
            return None
        assert start is not None and end is not None and needs is not None
        assert line is not None
        return _Parsed(ShiftTemplate(str(code), str(name).strip(), line.code, start, end,
                                     needs, flags["night"], flags["remote"], weekdays), path)

    def clock(self, value: Any, path: Path_, where: str, *, end: bool) -> time | None:
        what = "end" if end else "start"
        if _is_int(value):
            # YAML 1.1 reads an unquoted 16:00 as the base-60 number 960.
            guess = f"{value // 60:02d}:{value % 60:02d}" if 0 <= value <= 24 * 60 else "16:00"
            self.bad(path, where, f"{what} 应为带引号的时间 \"HH:MM\"; 不加引号时 YAML 会把 "
                                  f"{guess} 读成数字 {value}, 请写成 \"{guess}\"")
            return None
        match = _CLOCK.match(value.strip()) if isinstance(value, str) else None
        if match:
            hour, minute = int(match[1]), int(match[2])
            if hour < 24 and minute < 60:
                return time(hour, minute)
            if end and hour == 24 and minute == 0:
                return time(0, 0)
        limit = "00:00 至 24:00" if end else "00:00 至 23:59"
        self.bad(path, where, f"{what} 时间 {value!r} 无效, 应为 \"HH:MM\" ({limit})")
        return None

    # needs

    def needs(self, raw: Any, path: Path_, where: str) -> dict[DayKind, Need] | None:
        if not self.check.mapping(raw, path, where, "need 写 {lawyers: 2, ...} 或按 "
                                                    "workday/weekend/holiday 分别写"):
            return None
        kinds = [k for k in raw if k in DAY_KINDS]
        misspelt = [k for k in raw if k not in _NEED_KEYS and k not in DAY_KINDS
                    and difflib.get_close_matches(k, DAY_KINDS, n=1, cutoff=0.6)]
        if misspelt:  # e.g. `holidy:` — a per-kind need with a typo, not a flat one
            for k in misspelt:
                self.bad((*path, k), where, f"未知的日期类型 {k!r}{_hint(k, DAY_KINDS)} "
                                            f"(可用: {', '.join(DAY_KINDS)})", key=True)
            return None
        if not kinds:
            need = self.need(raw, path, where + " need")
            return None if need is None else dict.fromkeys(DAY_KINDS, need)
        others = [k for k in raw if k not in DAY_KINDS]
        if others:
            self.bad((*path, others[0]), where,
                     f"need 中不能混用 {others[0]!r} 和日期类型 {kinds[0]!r}: 要么一个 need "
                     "适用于每天, 要么按 workday / weekend / holiday 分别写", key=True)
            return None
        out: dict[DayKind, Need] = {}
        ok = True
        for kind in DAY_KINDS:
            if kind not in raw or raw[kind] is None:
                continue  # the shift does not run on such days
            need = self.need(raw[kind], (*path, kind), f"{where} need.{kind}")
            if need is None:
                ok = False
            else:
                out[kind] = need
        return out if ok else None

    def need(self, raw: Any, path: Path_, where: str) -> Need | None:
        if not self.check.mapping(raw, path, where, "例如 {lawyers: 3, skills: {labor: 1}}"):
            return None
        self.check.keys(raw, path, where, _NEED_KEYS, ("lawyers",))
        ok = all(k in _NEED_KEYS for k in raw)
        lawyers = raw.get("lawyers")
        if "lawyers" not in raw:
            return None
        if not _is_int(lawyers) or lawyers < 0:
            self.bad((*path, "lawyers"), where,
                     f"lawyers (人数) 应为不小于 0 的整数, 实际为 {lawyers!r}")
            return None
        level = raw.get("min_proficiency", 1)
        if not _is_int(level) or not 1 <= level <= _MAX_PROFICIENCY:
            self.bad((*path, "min_proficiency"), where,
                     f"min_proficiency (熟练度) 应为 1 至 5 的整数, 实际为 {level!r}")
            ok = False
        skills = self.counts(raw, "skills", path, where, lawyers, _skill_code, _unknown_skill)
        languages = self.counts(raw, "languages", path, where, lawyers, _language,
                                _unknown_language)
        if not ok or skills is None or languages is None:
            return None
        return Need(lawyers, skills, languages, level)

    def counts(self, raw: Mapping[str, Any], key: str, path: Path_, where: str,
               lawyers: int, parse: Callable[[Any], K | None],
               unknown: Callable[[Any], str]) -> dict[K, int] | None:
        value = raw.get(key, {})
        if value is None:
            return {}
        at: Path_ = (*path, key)
        what = "技能" if key == "skills" else "语言"
        if not isinstance(value, dict):
            self.bad(at, where, f"{key} 应为映射 {what}: 人数, 例如 {{labor: 1}}, "
                                f"实际为 {value!r}")
            return None
        out: dict[K, int] = {}
        ok = True
        for name, count in value.items():
            code = parse(name)
            if code is None:
                self.bad((*at, name), where, unknown(name), key=True)
                ok = False
            elif not _is_int(count) or count < 0:
                self.bad((*at, name), where,
                         f"{what} {name} 的人数应为不小于 0 的整数, 实际为 {count!r}")
                ok = False
            elif count > lawyers:
                self.bad((*at, name), where, f"{what} {name} 至少 {count} 人, "
                                             f"超过了该班次的总人数 {lawyers}")
                ok = False
            elif code in out:
                self.bad((*at, name), where, f"{what} {name} 重复 (与 {code} 相同)", key=True)
                ok = False
            elif count:
                out[code] = count
        return out if ok else None

    # cross-checks

    def overlaps(self, shifts: Sequence[_Parsed]) -> None:
        """Shifts of one line must not run at the same time on the same kind of day.

        The same day is compared for each day kind both run on and each weekday both run on;
        a shift crossing midnight is also compared with the next day's shifts (any kind of
        day, since any kind may follow any other).
        """
        for j, b in enumerate(shifts):
            for a in shifts[:j]:
                if a.template.line != b.template.line:
                    continue
                clash = _overlap(a.template, b.template)
                if clash:
                    t = b.template
                    self.bad(b.path, f"班次 {t.code} [{t.line}]",
                             f"{_span(t)} 与 {a.template.code} {_span(a.template)} "
                             f"{clash}; 同一线路的班次不能重叠")


def _minutes(t: ShiftTemplate) -> tuple[int, int]:
    start = t.start.hour * 60 + t.start.minute
    return start, start + round(t.hours * 60)


def _span(t: ShiftTemplate) -> str:
    end = "24:00" if t.end == time(0, 0) else t.end.strftime("%H:%M")
    return f"{t.start.strftime('%H:%M')}-{end}"


def _running(t: ShiftTemplate) -> set[DayKind]:
    return {k for k, need in t.needs.items() if need.lawyers > 0}


def _overlap(a: ShiftTemplate, b: ShiftTemplate) -> str:
    """How two shifts of a line overlap (a Chinese phrase), or "" when they never do."""
    sa, ea = _minutes(a)
    sb, eb = _minutes(b)
    shared = [k for k in DAY_KINDS if k in _running(a) & _running(b)]
    if shared and a.weekdays & b.weekdays and sa < eb and sb < ea:
        return f"在{'、'.join(KIND_ZH[k] for k in shared)}的同一天时间重叠"
    if not (_running(a) and _running(b)):
        return ""
    # One runs past midnight into the other's next day (any kind may follow any other).
    for first, second, end, next_start in ((a, b, ea, sb), (b, a, eb, sa)):
        next_days = {(d + 1) % 7 for d in first.weekdays}
        if next_days & second.weekdays and next_start + 24 * 60 < end:
            return f"时间重叠 ({first.code} 跨过零点, 延续到次日 {second.code} 开始之后)"
    return ""


def _unknown_skill(value: Any) -> str:
    return (f"未知技能 {value!r}{_hint(str(value), sorted(SKILLS))} "
            f"(可用: {', '.join(sorted(SKILLS))})")


def _unknown_language(value: Any) -> str:
    codes = [lang.value for lang in Language]
    return f"未知语言 {value!r}{_hint(str(value), codes)} (可用: {', '.join(codes)})"


# --- lawyers ---------------------------------------------------------------------------------

_LAWYER_KEYS = ("work_id", "name", "firm", "skills", "languages", "max_shifts",
                "max_consecutive_nights", "remote_night", "practice_since", "practice_years",
                "off", "off_weekdays", "prefer", "avoid", "lines", "unavailable")
_CSV_COLUMNS = ("work_id", "name", "firm", "skills", "languages", "max_shifts",
                "max_consecutive_nights", "remote_night", "practice_since", "off_weekdays",
                "prefer", "avoid", "lines", "unavailable")
_PERIOD_KEYS = ("from", "to", "date", "reason")
_TRUE = {"true", "yes", "y", "1", "是", "对", "√"}
_FALSE = {"false", "no", "n", "0", "否", "不", ""}
# CSV cell for unavailability: 2026-12-10~2026-12-12(开庭); 2026-12-20
_CSV_PERIOD = re.compile(r"^\s*([0-9-]+)\s*(?:[~～至]\s*([0-9-]+))?\s*(?:[(（](.*)[)）])?\s*$")


class _Record:
    """One lawyer's fields, where each came from, and how to report problems about it."""

    def __init__(self, problems: _Problems, data: Mapping[str, Any], *,
                 doc: Document | None = None, path: Path_ = (), row: int = 0) -> None:
        self.problems = problems
        self.data = data
        self.doc = doc
        self.path = path
        self.row = row
        wid = data.get("work_id")
        self.who = f"律师 {wid}" if isinstance(wid, str | int) and str(wid).strip() \
            else (f"lawyers[{path[-1]}]" if doc is not None and path else "律师")

    def line(self, *sub: str | int, key: bool = False) -> int:
        if self.doc is None:
            return self.row
        return self.doc.where((*self.path, *sub), key=key)[0]

    def bad(self, sub: Sequence[str | int], message: str, *, key: bool = False) -> None:
        where = _dotted(sub) if self.doc is not None else (f"列 {sub[0]}" if sub else "")
        prefix = f"{self.who} {where}".strip()
        self.problems.add(self.line(*sub, key=key), f"{prefix}: {message}")


@dataclass
class _LawyerContext:
    tz: tzinfo
    today: date
    templates: Templates | None


def load_lawyers(path: str | Path, *, tz: tzinfo, today: date | None = None,
                 templates: Templates | None = None) -> list[Lawyer]:
    """Read and check a lawyers file: YAML, or CSV (``*.csv``) with a header row.

    YAML is ``lawyers: [{work_id: L2001, name: 张三, ...}, ...]`` (a bare list works too)
    with the keys of :class:`~hotline.roster.model.Lawyer` plus ``off`` (recurring days off,
    ``[sat]``), ``practice_since`` (a date) and ``unavailable``
    (``[{from: 2026-12-10, to: 2026-12-12, reason: 开庭}]``, dates inclusive; ``date:`` for
    one day; a date with a time is that exact moment).

    CSV columns are ``work_id,name,firm,skills,languages,max_shifts,max_consecutive_nights,
    remote_night,practice_since,off_weekdays,prefer,avoid`` and, optionally, ``lines`` and
    ``unavailable`` (``2026-12-10~2026-12-12(开庭); 2026-12-20``). List cells are separated
    by ``;`` or ``、``; skills are ``labor:4;marriage_family:3``; booleans are true/false,
    是/否 or 1/0. UTF-8 (with or without BOM) and Excel's GB18030 are both read.

    Args:
        path: The file.
        tz: The hotline's time zone; unavailability dates are local days in it.
        today: The date ``practice_since`` is measured to (default: today in ``tz``).
        templates: When given, ``lines`` and the shift codes in ``prefer`` / ``avoid`` are
            checked against it, and a lawyer who qualifies for none of their lines is refused.

    Raises:
        RosterError: ``roster.lawyers`` with every problem as ``file:line: message`` (YAML)
            or ``file:row: message`` (CSV; the physical line of the record).
    """
    file = Path(path)
    problems = _Problems(str(path))
    ctx = _LawyerContext(tz, today or datetime.now(tz).date(), templates)
    records: list[_Record] = []
    if file.suffix.lower() == ".csv":
        records = _csv_records(file, problems)
    else:
        doc = _read_yaml(file, str(path), problems)
        if doc is not None:
            records = _yaml_records(doc, problems)
    lawyers: list[Lawyer] = []
    seen: dict[str, int] = {}
    for record in records:
        lawyer = _lawyer(record, ctx)
        raw_id = record.data.get("work_id")
        wid = str(raw_id).strip() if isinstance(raw_id, str | int) else ""
        if wid and wid in seen:
            record.bad(["work_id"], f"工号 {wid} 重复 (第 {seen[wid]} 行已出现)")
            continue
        if wid:
            seen[wid] = record.line("work_id")
        if lawyer is not None:
            lawyers.append(lawyer)
    if not records and not problems.found:
        problems.add(1, "没有律师")
    problems.raise_if_any("roster.lawyers")
    return lawyers


def _yaml_records(doc: Document, problems: _Problems) -> list[_Record]:
    data = doc.data
    base: Path_ = ()
    if isinstance(data, dict):
        for key in data:
            if key != "lawyers":
                line = doc.where((key,), key=True)[0]
                problems.add(line, f"未知的键 {key!r}{_hint(key, ['lawyers'])} (可用: lawyers)")
        if "lawyers" not in data:
            problems.add(1, "缺少 lawyers: 律师列表")
            return []
        data, base = data["lawyers"], ("lawyers",)
    if not isinstance(data, list):
        problems.add(doc.where(base)[0], "lawyers 应为列表, 每项是一位律师")
        return []
    records = []
    for i, item in enumerate(data):
        path = (*base, i)
        if not isinstance(item, dict):
            problems.add(doc.where(path)[0], f"lawyers[{i}] 应为映射 {{work_id: ..., name: ...}}, "
                                             f"实际为 {item!r}")
            continue
        records.append(_Record(problems, item, doc=doc, path=path))
    return records


def _csv_records(file: Path, problems: _Problems) -> list[_Record]:
    try:
        size = file.stat().st_size
        if size > MAX_FILE_BYTES:
            problems.add(1, f"文件过大 ({size} 字节, 上限 {MAX_FILE_BYTES} 字节)")
            return []
        raw = file.read_bytes()
    except OSError as exc:
        problems.add(1, f"无法读取文件: {exc.strerror or exc}")
        return []
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030")  # Excel on Chinese Windows saves CSV as GBK
        except UnicodeDecodeError:
            problems.add(1, "文件编码无法识别, 请另存为 UTF-8 (CSV UTF-8) 格式")
            return []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        problems.add(1, f"CSV 格式错误: {exc}")
        return []
    if header is None or not any(h.strip() for h in header):
        problems.add(1, "文件为空, 第一行应为表头: " + ",".join(_CSV_COLUMNS[:12]))
        return []
    columns = [h.strip().lower() for h in header]
    bad_header = False
    for name in columns:
        if name and name not in _CSV_COLUMNS:
            problems.add(1, f"表头: 未知的列 {name!r}{_hint(name, _CSV_COLUMNS)} "
                            f"(可用: {', '.join(_CSV_COLUMNS)})")
            bad_header = True
    for name in {n for n in columns if n and columns.count(n) > 1}:
        problems.add(1, f"表头: 列 {name!r} 重复")
        bad_header = True
    if "work_id" not in columns:
        problems.add(1, "表头: 缺少 work_id 列")
        bad_header = True
    if bad_header:
        return []
    records = []
    start = reader.line_num + 1
    try:
        for cells in reader:
            row, start = start, reader.line_num + 1
            if not any(c.strip() for c in cells):
                continue
            if len(cells) > len(columns):
                problems.add(row, f"该行有 {len(cells)} 列, 多于表头的 {len(columns)} 列 "
                                  "(含逗号的单元格请加引号)")
                continue
            data = {name: cell.strip() for name, cell in zip(columns, cells, strict=False)
                    if name and cell.strip()}
            records.append(_Record(problems, data, row=row))
    except csv.Error as exc:
        problems.add(reader.line_num, f"CSV 格式错误: {exc}")
    return records


def _lawyer(r: _Record, ctx: _LawyerContext) -> Lawyer | None:
    """Check one lawyer's fields; None (with problems recorded) when any is wrong."""
    n_before = len(r.problems.found)
    data = r.data
    if r.doc is not None:
        for key in data:
            if key not in _LAWYER_KEYS:
                r.bad([key], f"未知的键 {key!r}{_hint(key, _LAWYER_KEYS)} "
                             f"(可用: {', '.join(_LAWYER_KEYS)})", key=True)
    work_id = _work_id(r)
    name = _text(r, "name")
    firm = _text(r, "firm")
    skills = _skills(r)
    languages = _languages(r)
    max_shifts = _count(r, "max_shifts", 0, 31 * 3)
    max_nights = _count(r, "max_consecutive_nights", 0, 31)
    remote_night = _flag(r, "remote_night")
    practice = _practice(r, ctx.today)
    off = _days_off(r)
    prefer = _wishes(r, "prefer", ctx.templates)
    avoid = _wishes(r, "avoid", ctx.templates)
    lines = _lines(r, ctx.templates)
    unavailable = _periods(r, ctx.tz)
    if len(r.problems.found) > n_before or work_id is None:
        return None
    lawyer = Lawyer(work_id, name, firm, skills, languages, max_shifts, max_nights,
                    unavailable, off, prefer, avoid, remote_night, practice, lines)
    if ctx.templates is not None and lines:
        reasons = [_why_not(lawyer, ctx.templates.lines[code]) for code in sorted(lines)]
        if all(reasons):
            r.bad(["lines"], "不能在所列的任何线路值班: " + "; ".join(r for r in reasons if r))
            return None
    return lawyer


def _why_not(lawyer: Lawyer, line: Line) -> str:
    if line.languages and not (line.languages & lawyer.languages):
        spoken = "、".join(sorted(lang.label for lang in line.languages))
        return f"{line.code} 需要会 {spoken}"
    if line.min_practice_years and (lawyer.practice_years or 0) < line.min_practice_years:
        return f"{line.code} 需要执业满 {line.min_practice_years} 年"
    return ""


def _work_id(r: _Record) -> str | None:
    value = r.data.get("work_id")
    if value is None or (isinstance(value, str) and not value.strip()):
        r.bad(["work_id"] if r.doc is None else [], "缺少工号 work_id")
        return None
    text = str(value).strip() if _is_int(value) or isinstance(value, str) else None
    if text is None or len(text) > _MAX_WORK_ID or not text.isprintable() \
            or any(ch.isspace() for ch in text):
        r.bad(["work_id"], f"工号 {value!r} 无效, 应为 1-{_MAX_WORK_ID} 个字符, 不含空白")
        return None
    return text


def _text(r: _Record, key: str) -> str:
    value = r.data.get(key, "")
    if value is None:
        return ""
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value).strip()
    r.bad([key], f"{key} 应为文字, 实际为 {value!r}")
    return ""


def _skills(r: _Record) -> dict[str, int]:
    raw = r.data.get("skills")
    if raw is None:
        return {}
    items: list[tuple[Any, Any, Sequence[str | int]]] = []
    if isinstance(raw, dict):
        items = [(k, v, ["skills", k]) for k, v in raw.items()]
    else:
        entries = _as_list(raw)
        if entries is None:
            r.bad(["skills"], f"skills 应为 {{技能: 熟练度}} 或 labor:4;marriage_family:3, "
                              f"实际为 {raw!r}")
            return {}
        for i, entry in enumerate(entries):
            skill, sep, level = str(entry).replace("：", ":").partition(":")
            if not sep:
                r.bad(["skills", i], f"技能 {entry!r} 缺少熟练度, 应为 代码:熟练度(1-5), "
                                     "例如 labor:4")
                continue
            items.append((skill.strip(), level.strip(), ["skills", i]))
    out: dict[str, int] = {}
    for name, level, at in items:
        code = _skill_code(name)
        value = _as_int(level)
        if code is None:
            r.bad(at, _unknown_skill(name), key=isinstance(raw, dict))
        elif value is None or not 1 <= value <= _MAX_PROFICIENCY:
            r.bad(at, f"技能 {name} 的熟练度应为 1 至 5 的整数, 实际为 {level!r}")
        elif code in out:
            r.bad(at, f"技能 {name} 重复")
        else:
            out[code] = value
    return out


def _languages(r: _Record) -> frozenset[Language]:
    raw = r.data.get("languages")
    if raw is None:
        return frozenset({Language.MANDARIN})
    items = _as_list(raw)
    if items is None or not items:
        r.bad(["languages"], f"languages 应为语言列表, 例如 [mandarin, cantonese], "
                             f"实际为 {raw!r}")
        return frozenset()
    out = set()
    for i, item in enumerate(items):
        language = _language(item)
        if language is None:
            r.bad(["languages", i] if isinstance(raw, list) else ["languages"],
                  _unknown_language(item))
        else:
            out.add(language)
    return frozenset(out)


def _count(r: _Record, key: str, low: int, high: int) -> int | None:
    raw = r.data.get(key)
    if raw is None or raw == "":
        return None
    value = _as_int(raw)
    if value is None or not low <= value <= high:
        r.bad([key], f"{key} 应为 {low} 至 {high} 的整数, 实际为 {raw!r}")
        return None
    return value


def _flag(r: _Record, key: str) -> bool:
    raw = r.data.get(key, False)
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower() if isinstance(raw, str | int) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    r.bad([key], f"{key} 应为 true/false (是/否), 实际为 {raw!r}")
    return False


def _date(value: Any) -> date | datetime | None:
    """A date (or a datetime, for a period starting mid-day) from YAML or text."""
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str):
        text = value.strip().replace("/", "-")
        for parse in (date.fromisoformat, datetime.fromisoformat):
            try:
                return parse(text)
            except ValueError:
                continue
    return None


def _practice(r: _Record, today: date) -> float | None:
    since_raw = r.data.get("practice_since")
    years_raw = r.data.get("practice_years")
    if since_raw is not None and years_raw is not None:
        r.bad(["practice_years"], "practice_since 和 practice_years 只能写一个", key=True)
        return None
    if years_raw is not None:
        if isinstance(years_raw, int | float) and not isinstance(years_raw, bool) \
                and 0 <= years_raw <= 70:
            return float(years_raw)
        r.bad(["practice_years"], f"practice_years 应为 0 至 70 的数字, 实际为 {years_raw!r}")
        return None
    if since_raw is None or since_raw == "":
        return None
    since: date | datetime | None
    if _is_int(since_raw) or (isinstance(since_raw, str) and re.fullmatch(r"\d{4}", since_raw)):
        year = int(since_raw)
        since = date(year, 1, 1) if 1950 <= year <= 2100 else None
    else:
        since = _date(since_raw)
    if since is None or isinstance(since, datetime):
        r.bad(["practice_since"], f"practice_since (执业起始日期) {since_raw!r} 无效, "
                                  "应为 YYYY-MM-DD, 例如 2015-07-01")
        return None
    if since > today:
        r.bad(["practice_since"], f"practice_since {since} 晚于今天 {today}")
        return None
    return round((today - since).days / _DAYS_PER_YEAR, 2)


def _days_off(r: _Record) -> frozenset[int]:
    keys = [k for k in ("off", "off_weekdays") if k in r.data]
    if len(keys) > 1:
        r.bad(["off_weekdays"], "off 和 off_weekdays 是同一项, 只能写一个", key=True)
        return frozenset()
    if not keys or r.data[keys[0]] is None:
        return frozenset()
    days, wrong = _weekday_set(r.data[keys[0]])
    if wrong:
        r.bad([keys[0]], f"{keys[0]} (固定休息日) 中 {'、'.join(wrong)} 无效, {_WEEKDAY_HELP}")
    return days


def _wishes(r: _Record, key: str, templates: Templates | None) -> frozenset[str]:
    raw = r.data.get(key)
    if raw is None:
        return frozenset()
    items = _as_list(raw)
    if items is None:
        r.bad([key], f"{key} 应为班次代码或星期的列表, 例如 [D, sat], 实际为 {raw!r}")
        return frozenset()
    codes = {t.code for t in templates.shifts} if templates is not None else None
    out = set()
    for i, item in enumerate(items):
        text = str(item).strip()
        day = _weekday(text)
        if day is not None:
            out.add(WEEKDAYS[day])
        elif codes is not None and text not in codes:
            known = sorted(codes) + list(WEEKDAYS)
            r.bad([key, i] if isinstance(raw, list) else [key],
                  f"{key} 中的 {text!r} 既不是班次代码也不是星期{_hint(text, known)} "
                  f"(班次: {', '.join(sorted(codes))}; 星期: mon…sun)")
        elif not text or (codes is None and not _CODE.match(text)):
            r.bad([key, i] if isinstance(raw, list) else [key],
                  f"{key} 中的 {text!r} 应为班次代码 (如 D) 或星期 (如 sat)")
        else:
            out.add(text)
    return frozenset(out)


def _lines(r: _Record, templates: Templates | None) -> frozenset[str]:
    raw = r.data.get("lines")
    if raw is None:
        return frozenset()
    items = _as_list(raw)
    if items is None:
        r.bad(["lines"], f"lines 应为线路代码列表, 例如 [main, sme], 实际为 {raw!r}")
        return frozenset()
    out = set()
    for i, item in enumerate(items):
        text = str(item).strip()
        if templates is not None and text not in templates.lines:
            r.bad(["lines", i] if isinstance(raw, list) else ["lines"],
                  f"没有线路 {text!r}{_hint(text, templates.lines)} "
                  f"(现有: {', '.join(templates.lines)})")
        elif not _CODE.match(text):
            r.bad(["lines", i] if isinstance(raw, list) else ["lines"], f"线路代码 {text!r} 无效")
        else:
            out.add(text)
    return frozenset(out)


def _periods(r: _Record, tz: tzinfo) -> tuple[Period, ...]:
    raw = r.data.get("unavailable")
    if raw is None or raw == "":
        return ()
    if r.doc is None and isinstance(raw, str):
        entries: list[Any] = []
        for part in re.split(r"[;；]", raw):
            if not part.strip():
                continue
            match = _CSV_PERIOD.match(part)
            if match is None:
                r.bad(["unavailable"], f"不可值班时段 {part.strip()!r} 无效, 应为 "
                                       "2026-12-10~2026-12-12(原因) 或 2026-12-20")
                continue
            entries.append({"from": match[1], "to": match[2] or match[1],
                            "reason": (match[3] or "").strip()})
        raw = entries
    if not isinstance(raw, list):
        r.bad(["unavailable"], "unavailable 应为列表, 每项如 "
                               "{from: 2026-12-10, to: 2026-12-12, reason: 开庭}")
        return ()
    out = []
    for i, entry in enumerate(raw):
        period = _period(r, ["unavailable", i] if r.doc is not None else ["unavailable"],
                         entry, tz)
        if period is not None:
            out.append(period)
    return tuple(sorted(out, key=lambda p: p.start))


def _period(r: _Record, at: list[str | int], entry: Any, tz: tzinfo) -> Period | None:
    if not isinstance(entry, dict):
        r.bad(at, f"应为 {{from: 日期, to: 日期, reason: 原因}}, 实际为 {entry!r}")
        return None
    ok = True
    for key in entry:
        if key not in _PERIOD_KEYS:
            r.bad([*at, key], f"未知的键 {key!r}{_hint(key, _PERIOD_KEYS)} "
                              f"(可用: {', '.join(_PERIOD_KEYS)})", key=True)
            ok = False
    if "date" in entry and ("from" in entry or "to" in entry):
        r.bad([*at, "date"], "date (单日) 不能与 from/to 同时写", key=True)
        return None
    if "date" not in entry and "from" not in entry:
        r.bad(at, "缺少 from (开始日期) 或 date (单日)")
        return None
    first_raw = entry.get("date", entry.get("from"))
    last_raw = entry.get("date", entry.get("to", first_raw))
    first_key = "date" if "date" in entry else "from"
    last_key = "date" if "date" in entry else ("to" if "to" in entry else "from")
    first, last = _date(first_raw), _date(last_raw)
    for value, raw, key in ((first, first_raw, first_key), (last, last_raw, last_key)):
        if value is None:
            r.bad([*at, key], f"日期 {raw!r} 无效, 应为 YYYY-MM-DD (或 YYYY-MM-DD HH:MM)")
            ok = False
    reason = entry.get("reason", "")
    if not isinstance(reason, str):
        r.bad([*at, "reason"], f"reason 应为文字, 实际为 {reason!r}")
        ok = False
    if not ok or first is None or last is None:
        return None
    start = _moment(first, tz)
    # A date ends at the next midnight (inclusive day); a datetime is the exact moment.
    end = _moment(last, tz) if isinstance(last, datetime) else \
        datetime.combine(last + timedelta(days=1), time(0), tz)
    if end <= start:
        r.bad(at, f"结束 {last} 早于开始 {first}")
        return None
    return Period(start, end, (reason or "").strip())


def _moment(value: date | datetime, tz: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)
    return datetime.combine(value, time(0), tz)
