"""Chinese numerals in transcripts → digits: amounts, dates, durations, ages, phone-like strings.

Vosk spells numbers as words (三千五百 块, 幺 三 八 零 ...). Lawyers scan summaries for amounts
and dates, and masking needs digits to recognise phone and ID numbers, so we normalise them:
三千五百块 → 3500元, 二零二四年三月五号 → 2024年3月5日, 三个月 → 3个月, 幺三八零零一三八零零零
→ 13800138000. We only rewrite numerals in a context that says what they are (a unit, a date
marker, a long digit string): cn2an's own ``transform`` also rewrites 一起, 一定 and 统一 into
1起, 1定 and 统1, so it is only used to value a span we have already delimited, and any failure
there leaves the span as spoken. Approximations (三四千, 十几万) and idioms stay as they are.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import cache
from typing import Any

from hotline.speech.text.offsets import Edit

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef"
_SPACES_IN_CJK = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")
_SPACES_AROUND_DIGITS = re.compile(rf"(?<=[{_CJK}])\s+(?=\d)|(?<=\d)\s+(?=[{_CJK}])")

DIGIT_WORDS = {"零": "0", "〇": "0", "洞": "0", "幺": "1", "一": "1", "二": "2", "两": "2",
               "三": "3", "四": "4", "五": "5", "六": "6", "七": "7", "八": "8", "九": "9"}
_DIGITS = "零〇一二两三四五六七八九"
_CN = f"[一二两三四五六七八九十][{_DIGITS}十百千万亿]*"  # a numeral starts with a digit or 十
_CN_NUM = f"{_CN}(?:点[{_DIGITS}]+)?[万千百]?"
_AR_NUM = r"\d+(?:\.\d+)?[万千百]?"
_NOT_AFTER_NUMBER = rf"(?<![0-9.{_DIGITS}十百千万亿点幺洞])"
_MULTIPLIER = {"百": 100, "千": 1000, "万": 10_000, "亿": 100_000_000}
_APPROX = re.compile("[一二两三四五六七八九][一二两三四五六七八九]")  # 三四千, 五六个
# Idioms and fixed phrases a numeral rule would mangle (十万火急 is not 100000火急).
IDIOMS = ("十万火急", "一年到头", "一天到晚", "有一天", "一日三餐", "一年四季", "三天两头",
          "三年五载", "一年半载", "一时半会", "一五一十", "九死一生", "十全十美", "百分之百",
          "三番五次", "三番两次", "一清二楚", "一干二净", "千万", "万一", "一下子", "一会儿")


class NumberKind(StrEnum):
    """What a normalised number is."""

    AMOUNT = "amount"  # 金额
    DATE = "date"  # 日期
    DURATION = "duration"  # 时长
    AGE = "age"  # 年龄
    PERCENT = "percent"  # 百分比
    DIGITS = "digits"  # 数字串 (电话、证件号、案号等)
    NUMBER = "number"  # 数值


@dataclass(frozen=True)
class NumberMatch:
    """One normalised number; ``start``/``end`` index the output, ``source_*`` the input.

    ``value`` is machine-readable: yuan for amounts (``3500``, ``3.5``), ISO 8601 for dates
    (``2024-03-05``, ``2024-03``, ``--03-05``), the digits for digit strings, else the text.
    """

    kind: NumberKind
    start: int
    end: int
    text: str
    value: str
    source: str
    source_start: int
    source_end: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {"kind": self.kind.value, "start": self.start, "end": self.end,
                "text": self.text, "value": self.value}


def join_words(text: str) -> str:
    """Join Vosk's space-separated words into written Chinese.

    Spaces between CJK characters, and between CJK and digits, go (三千五百 块 → 三千五百块);
    one space stays between Latin words and between digit groups (027-8765 4321).
    """
    text = " ".join(text.split())
    return _SPACES_AROUND_DIGITS.sub("", _SPACES_IN_CJK.sub("", text))


def digit_words_to_digits(words: str) -> str | None:
    """幺三八零零一三八零零零 → 13800138000 (spaces ignored); ``None`` if not only digit words."""
    out = []
    for ch in words:
        if ch.isspace():
            continue
        if ch.isascii() and ch.isdigit():
            out.append(ch)
        elif ch in DIGIT_WORDS:
            out.append(DIGIT_WORDS[ch])
        else:
            return None
    return "".join(out) or None


def value_of(numeral: str) -> Decimal | None:
    """The value of a delimited numeral (三千五, 两万, 三点五万, 2万, 十二); ``None`` if unsure."""
    if not numeral:
        return None
    mult = 1
    if numeral[-1] in _MULTIPLIER and len(numeral) > 1 and (
            "点" in numeral or "." in numeral or numeral[:-1].isascii()):
        numeral, mult = numeral[:-1], _MULTIPLIER[numeral[-1]]
    if numeral.isascii():
        try:
            return Decimal(numeral) * mult
        except InvalidOperation:
            return None
    whole = numeral.split("点")[0]
    if _APPROX.search(whole) or (len(whole) > 1 and not re.search("[十百千万亿]", whole)):
        return None  # 三四千 is "three or four thousand"; 九零 is a year or a digit string
    value = _cn2an(numeral)
    return None if value is None else value * mult


@cache
def _cn2an(numeral: str) -> Decimal | None:
    import cn2an  # imported on first use: it takes a third of a second

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = cn2an.cn2an(numeral, "normal")
        return Decimal(str(result))
    except Exception:  # noqa: BLE001 - cn2an raises ValueError, KeyError, IndexError...
        return None


def _show(value: Decimal) -> str:
    """3500 not 3.5E+3, 3.5 not 3.50."""
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


# --- rules: each returns (replacement, value) or None to leave the span alone ---------------

_Conv = Callable[[re.Match[str]], tuple[str, str] | None]


def _amount_jiao(m: re.Match[str]) -> tuple[str, str] | None:
    yuan, jiao = value_of(m["yuan"]), value_of(m["jiao"])
    if yuan is None or jiao is None:
        return None
    value = yuan + jiao / 10
    return f"{_show(value)}元", _show(value)


def _amount(m: re.Match[str]) -> tuple[str, str] | None:
    value = value_of(m["num"])
    if value is None:
        return None
    if m["wan"]:
        value *= _MULTIPLIER[m["wan"]]
    more = m["more"] or ""
    return f"{_show(value)}{more}元", _show(value)


_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _date(m: re.Match[str]) -> tuple[str, str] | None:
    year = digit_words_to_digits(m["y"]) if m["y"] else None
    month = value_of(m["m"]) if m["m"] else None
    day = value_of(m["d"]) if m["d"] else None
    if (m["m"] and month is None) or (m["d"] and day is None):
        return None
    if month is not None and not 1 <= month <= 12:
        return None
    spoken_day = ""
    if day is not None and month is not None:
        leap = year is None or int(year) % 4 == 0 and (int(year) % 100 != 0 or int(year) % 400 == 0)
        limit = 29 if month == 2 and leap else 28 if month == 2 else _MONTH_DAYS[int(month) - 1]
        if not 1 <= day <= limit:
            if not year:
                return None
            # 二零二三年二月二十九号: keep the impossible day as spoken for the lawyer to ask.
            spoken_day, day = m.group()[m.start("d") - m.start():], None
    text = (f"{year}年" if year else "") + (f"{int(month)}月" if month else "") + (
        f"{int(day)}日" if day else spoken_day)
    iso = (year or "-") + (f"-{int(month):02d}" if month else "") + (
        f"-{int(day):02d}" if day else "")
    return text, iso


def _duration(m: re.Match[str]) -> tuple[str, str] | None:
    value = value_of(m["num"])
    if value is None:
        return None
    text = f"{_show(value)}{m['more'] or ''}{m['unit']}{m.groupdict().get('half') or ''}"
    return text, text


def _percent(m: re.Match[str]) -> tuple[str, str] | None:
    value = value_of(m["num"])
    return None if value is None or value > 100 else (f"{_show(value)}%", _show(value))


def _digits(m: re.Match[str]) -> tuple[str, str] | None:
    words = m.group()
    if len(words) < 3 or len(words) < 5 and not re.search("[零〇洞幺]", words):
        return None  # 一二三 is counting, 三三两两 an idiom; 一一零, 幺二三四八 are numbers
    digits = digit_words_to_digits(words)
    return (digits, digits) if digits else None


def _number(m: re.Match[str]) -> tuple[str, str] | None:
    if not re.search("[百千万亿]", m.group()):
        return None  # 十二, 三 stay words: only big bare numbers (一万二) are worth digits
    value = value_of(m.group())
    return None if value is None else (_show(value), _show(value))


# 块 is also a measure word (一块地, 两块砖) and 一块 means "together" (一块儿, 一块去).
_NOT_MONEY = ("儿|地|田|砖|石|板|玻璃|肉|布|蛋糕|手表|表|牌|区域|去|走|来|住|玩|吃|喝|干|做|过|回"
              "|上|下|睡|生活|长大")
_DAY = ("三十一|三十|二十[一二三四五六七八九]?|十[一二三四五六七八九]?|[一二三四五六七八九]"
        r"|3[01]|[12]\d|0?[1-9]")
_MONTH = r"十[一二]?|[一二三四五六七八九]|1[0-2]|0?[1-9]"
_B = _NOT_AFTER_NUMBER
RULES: tuple[tuple[NumberKind, re.Pattern[str], _Conv], ...] = (
    (NumberKind.DATE, re.compile(
        rf"(?:{_B}|(?<=[{_DIGITS}])(?=一九|二[零〇]))"  # a year may follow a digit string
        rf"(?P<y>[{_DIGITS}]{{4}}|(?:19|20)\d\d)年(?:(?P<m>{_MONTH})月"
        rf"(?:(?P<d>{_DAY})[日号])?)?"), _date),
    (NumberKind.DATE, re.compile(
        rf"{_B}(?P<y>)(?P<m>{_MONTH})月(?:(?P<d>{_DAY})[日号])?"), _date),
    (NumberKind.PERCENT, re.compile(rf"百分之(?P<num>{_CN_NUM}|{_AR_NUM})"), _percent),
    (NumberKind.AMOUNT, re.compile(
        rf"{_B}(?P<yuan>[一二两三四五六七八九十]+|\d+)块(?P<jiao>[一二三四五六七八九]|\d)(?:[毛角]钱?)?"
        rf"(?![{_DIGITS}十百千万0-9])"), _amount_jiao),
    (NumberKind.AMOUNT, re.compile(
        rf"{_B}(?P<num>{_CN_NUM}|{_AR_NUM})(?P<more>多|来|余)?(?P<wan>[万])?"
        rf"(?:块钱|元钱|元整|块(?!{_NOT_MONEY})|元(?![旦宵里]))"), _amount),
    (NumberKind.AGE, re.compile(
        rf"{_B}(?P<num>{_CN_NUM}|\d+)(?P<more>多)?(?P<unit>周岁|岁)"), _duration),
    (NumberKind.DURATION, re.compile(
        rf"{_B}(?P<num>{_CN_NUM}|\d+)(?P<more>多)?(?P<unit>个多月|个半月|个月|个多小时|个小时|个钟头|个多星期"
        r"|个星期|个礼拜|个工作日|年|周|星期|天|小时|钟头|分钟)(?P<half>半)?"), _duration),
    # A digit string stops before a glued year (…零零零二零二四年) and never takes the digits
    # of a numeral (一二三四五千) or glues itself to written digits (两万13800138000).
    (NumberKind.DIGITS, re.compile(
        rf"{_B}(?:(?!(?:一九|二[零〇])[{_DIGITS}]{{2}}年)[{_DIGITS}洞幺])++(?![十百千万亿点0-9])"),
     _digits),
    (NumberKind.NUMBER, re.compile(rf"{_B}(?>{_CN}(?:点[{_DIGITS}]+)?)(?![0-9])"), _number),
)


def normalise_numbers(text: str) -> tuple[str, tuple[NumberMatch, ...]]:
    """Rewrite the numbers of ``text``; return the text and what was rewritten, in order."""
    out, found, _ = rewrite_numbers(text)
    return out, found


def rewrite_numbers(text: str) -> tuple[str, tuple[NumberMatch, ...], tuple[Edit, ...]]:
    """:func:`normalise_numbers` plus the edits that move positions into the output.

    Scans left to right; at each point the leftmost match of any rule wins, ties going to the
    earlier rule (a date before a digit string). Idioms are never touched.
    """
    blocked = [(m.start(), m.end()) for idiom in IDIOMS
               for m in re.finditer(_NOT_AFTER_NUMBER + re.escape(idiom), text)]
    parts: list[str] = []
    found: list[NumberMatch] = []
    edits: list[Edit] = []
    pos = out_len = 0
    # Each rule's next hit, kept while it still lies ahead: no rescanning after every match.
    ahead: dict[int, tuple[re.Match[str], tuple[str, str]] | None] = {}
    while True:
        best: tuple[int, int, re.Match[str], tuple[str, str], NumberKind] | None = None
        for rank, (kind, pattern, convert) in enumerate(RULES):
            if rank not in ahead or _stale(ahead[rank], pos):
                ahead[rank] = _next(text, pos, pattern, convert, blocked)
            hit = ahead[rank]
            if hit is not None and (best is None or (hit[0].start(), rank) < best[:2]):
                best = (hit[0].start(), rank, hit[0], hit[1], kind)
        if best is None:
            break
        _, _, m, (new, value), kind = best
        parts.append(text[pos:m.start()])
        out_len += m.start() - pos
        # Two conversions side by side (…零零零 + 二零二四年) would fuse into one long number
        # that masking can no longer take apart: keep them a space apart.
        gap = " " if (found and found[-1].source_end == m.start()
                      and found[-1].text[-1].isdigit() and new[0].isdigit()) else ""
        found.append(NumberMatch(kind, out_len + len(gap), out_len + len(gap) + len(new), new,
                                 value, m.group(), m.start(), m.end()))
        edits.append(Edit(m.start(), m.end(), out_len, out_len + len(gap) + len(new)))
        parts.append(gap + new)
        out_len += len(gap) + len(new)
        pos = m.end()
    parts.append(text[pos:])
    return "".join(parts), tuple(found), tuple(edits)


def _stale(hit: tuple[re.Match[str], tuple[str, str]] | None, pos: int) -> bool:
    """A remembered hit now behind the scan (no hit stays no hit further on)."""
    return hit is not None and hit[0].start() < pos


def _next(text: str, pos: int, pattern: re.Pattern[str], convert: _Conv,
          blocked: list[tuple[int, int]],
          ) -> tuple[re.Match[str], tuple[str, str]] | None:
    """The first match of one rule at or after ``pos`` that converts and misses every idiom."""
    while (m := pattern.search(text, pos)) is not None:
        if m.end() > m.start() and not any(m.start() < e and s < m.end() for s, e in blocked):
            converted = convert(m)
            if converted is not None:
                return m, converted
        pos = m.start() + 1
    return None
