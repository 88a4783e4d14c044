"""Find and mask personal numbers: resident IDs, mobiles, landlines and bank cards.

Transcripts and logs are kept far longer than a call lasts (PIPL art. 19), so a caller's ID or
card number must never reach them in full. We mask only numbers that really are such numbers,
checked the way issuers build them: an 18-digit resident ID must carry a real birth date and the
GB 11643 check character; a bank card must pass Luhn; a mobile is 1[3-9] plus 9 digits; a
landline is 0 + area code + a local number not starting with 0 or 1. Amounts, dates, case
numbers and service numbers (12348, 110) are left alone. Numbers spoken as words (幺三八…) are
recognised as well, so this works on the raw transcript too.

What stays visible, so a lawyer can still tell numbers apart when calling back:

========== ======================== ==========================================
kind       shown                    why
========== ======================== ==========================================
ID         ``110105********123X``   area code (6) + last 4; the birth date goes
mobile     ``138****8000``          the usual 3 + 4 of Chinese service desks
landline   ``027****4321``          area code + last 4 of the local number
bank card  ``****1234``             last 4 only, as banks print them
========== ======================== ==========================================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from hotline.speech.text.numbers import DIGIT_WORDS
from hotline.speech.text.offsets import Edit

_WORD_DIGITS = DIGIT_WORDS  # 幺 = 1, 两 = 2, 洞 = 0 when digits are read out one by one
_DIGIT = "0-9\uff10-\uff19" + "".join(_WORD_DIGITS)
_SEP = r"[ \t\u3000\-\uff0d\u2014]"
_X = "Xx\uff38叉"  # the ID check character 10, also spoken as 叉
# A run of digits (or digit words) with separators between them. Written digits glued to a
# Latin token (a hex call id) are part of that token; digit words never are.
_RUN = re.compile(rf"(?:(?<![0-9A-Za-z_])[0-9\uff10-\uff19]|[{''.join(_WORD_DIGITS)}])"
                  rf"(?:{_SEP}{{0,3}}[{_DIGIT}])*")
_LATIN = re.compile(r"[A-Za-z_]")  # a digit cannot follow a maximal run, except after an X
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_MAX_DIGITS = 21  # 0086 + an 11-digit mobile + a little slack
_STRAY = 2  # digits the recogniser may glue to either end of a spoken number


class MaskKind(StrEnum):
    """The personal numbers we mask."""

    RESIDENT_ID = "resident_id"  # 居民身份证号
    MOBILE = "mobile"  # 手机号
    LANDLINE = "landline"  # 固定电话
    BANK_CARD = "bank_card"  # 银行卡号


@dataclass(frozen=True)
class Masked:
    """A masked number; ``start``/``end`` index the masked text, ``source_*`` the input."""

    kind: MaskKind
    start: int
    end: int
    source_start: int = 0
    source_end: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (never the number itself)."""
        return {"kind": self.kind.value, "start": self.start, "end": self.end}


def id_check_char(first17: str) -> str:
    """The GB 11643 (ISO 7064 MOD 11-2) check character of the first 17 digits."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def is_resident_id(number: str) -> bool:
    """An 18-character resident ID: area, a real birth date (1900–2099), sequence, check."""
    number = number.upper()
    if len(number) != 18 or not number[:17].isdigit() or number[0] == "0":
        return False
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return 1900 <= birth.year <= 2099 and number[17] == id_check_char(number[:17])


def luhn_ok(number: str) -> bool:
    """The Luhn checksum every bank card number carries."""
    if not number.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def is_mobile(number: str) -> bool:
    """A mainland mobile number, optionally with the 86 / 0086 country code."""
    for prefix in ("0086", "86"):
        if len(number) == 11 + len(prefix) and number.startswith(prefix):
            number = number[len(prefix):]
    return len(number) == 11 and number.isdigit() and number[0] == "1" and number[1] in "3456789"


def landline_area(number: str) -> str | None:
    """The area code of a landline with area code (027 + 8 digits, 0710 + 7–8), else ``None``."""
    if not number.isdigit() or not number.startswith("0") or number[1:2] in ("", "0"):
        return None
    area = number[:3] if number[1] in "12" else number[:4]
    local = number[len(area):]
    lengths = (8,) if len(area) == 3 else (7, 8)
    return area if len(local) in lengths and local[0] not in "01" else None


def classify_number(number: str) -> MaskKind | None:
    """Which personal number ``number`` (digits, maybe a final X) is, if any."""
    if is_resident_id(number):
        return MaskKind.RESIDENT_ID
    if not number.isdigit():
        return None
    if is_mobile(number):
        return MaskKind.MOBILE
    if landline_area(number):
        return MaskKind.LANDLINE
    if 16 <= len(number) <= 19 and number[0] != "0" and luhn_ok(number):
        return MaskKind.BANK_CARD
    return None


def shown(kind: MaskKind, number: str) -> str:
    """The masked form of a number of ``kind`` (see the table in the module docstring)."""
    if kind is MaskKind.RESIDENT_ID:
        return number[:6] + "*" * 8 + number[-4:].upper()
    if kind is MaskKind.MOBILE:
        return number[:-8] + "****" + number[-4:]
    if kind is MaskKind.LANDLINE:
        area = landline_area(number) or ""
        return area + "*" * (len(number) - len(area) - 4) + number[-4:]
    return "****" + number[-4:]


def mask_numbers(text: str) -> tuple[str, tuple[Masked, ...]]:
    """Mask every personal number in ``text``; return the text and the masked spans."""
    out, found, _ = rewrite_masked(text)
    return out, found


def rewrite_masked(text: str) -> tuple[str, tuple[Masked, ...], tuple[Edit, ...]]:
    """:func:`mask_numbers` plus the edits that move positions into the output."""
    hits: list[tuple[int, int, MaskKind, str]] = []
    for run in _RUN.finditer(text):
        start, end = run.span()
        if end < len(text) and text[end] in _X:
            end += 1
        if end < len(text) and text[end - 1].isascii() and _LATIN.match(text[end]):
            continue  # part of a longer token: a hex call id, an order code
        hits += _mask_run(text, start, end)
    parts: list[str] = []
    found: list[Masked] = []
    edits: list[Edit] = []
    pos = out_len = 0
    for start, end, kind, number in hits:
        parts.append(text[pos:start])
        out_len += start - pos
        new = shown(kind, number)
        found.append(Masked(kind, out_len, out_len + len(new), start, end))
        edits.append(Edit(start, end, out_len, out_len + len(new)))
        parts.append(new)
        out_len += len(new)
        pos = end
    parts.append(text[pos:])
    return "".join(parts), tuple(found), tuple(edits)


def _groups(text: str, start: int, end: int) -> list[list[tuple[str, int]]]:
    """The digit groups of a run: ``[[(digit, index), ...], ...]`` split at separators."""
    groups: list[list[tuple[str, int]]] = [[]]
    for i in range(start, end):
        digit = _digit(text[i])
        if digit is None:
            if groups[-1]:
                groups.append([])
            continue
        groups[-1].append((digit, i))
    return [g for g in groups if g]


def _digit(ch: str) -> str | None:
    if "0" <= ch <= "9":
        return ch
    if "\uff10" <= ch <= "\uff19":
        return chr(ord(ch) - 0xFF10 + ord("0"))
    if ch in _X:
        return "X"
    return _WORD_DIGITS.get(ch)


def _mask_run(text: str, start: int, end: int) -> list[tuple[int, int, MaskKind, str]]:
    """Cover a run with personal numbers, left to right, longest first.

    A number starts and ends at group boundaries (``027-8765 4321`` is three groups, one
    landline). A group that is no number as a whole may still begin or end with a mobile or ID
    glued to other digits by the recogniser (…一三八零零一三八零零零一…): those are masked too.
    """
    groups = _groups(text, start, end)
    hits: list[tuple[int, int, MaskKind, str]] = []
    i = 0
    while i < len(groups):
        for j in range(len(groups) - 1, i - 1, -1):
            number = "".join(d for g in groups[i:j + 1] for d, _ in g)
            if len(number) > _MAX_DIGITS:
                continue
            kind = classify_number(number)
            if kind is not None and (i == j or _layout_ok(kind, number, groups[i:j + 1], text)):
                hits.append((groups[i][0][1], groups[j][-1][1] + 1, kind, number))
                i = j + 1
                break
        else:
            hits += _inside(groups[i], text)
            i += 1
    return hits


_LAYOUTS = {
    MaskKind.MOBILE: {(3, 4, 4), (3, 8), (7, 4), (2, 3, 4, 4), (2, 11), (4, 11), (4, 3, 4, 4)},
    MaskKind.RESIDENT_ID: {(6, 8, 4), (6, 12), (6, 4, 4, 4)},
}


def _layout_ok(kind: MaskKind, number: str, groups: list[list[tuple[str, int]]],
               text: str) -> bool:
    """Whether several groups are one number as people write it, not neighbours in a list.

    ``12348 12345 110 120`` is four service numbers, not one Luhn-valid card; 138 0013 8000 is
    one mobile. Digits spoken one by one (unjoined 一 三 八 …) may be grouped any way.
    """
    if all(not text[i].isascii() for g in groups for _, i in g):
        return True
    sizes = tuple(len(g) for g in groups)
    if kind is MaskKind.LANDLINE:
        area = len(landline_area(number) or "")
        return sizes[0] == area and sum(sizes[1:]) == len(number) - area and (
            len(sizes) == 2 or all(3 <= n <= 4 for n in sizes[1:]))
    if kind is MaskKind.BANK_CARD:
        return all(n == 4 for n in sizes[:-1]) and 1 <= sizes[-1] <= 4 or sizes[0] == 6
    return sizes in _LAYOUTS[kind]


def _inside(group: list[tuple[str, int]], text: str) -> list[tuple[int, int, MaskKind, str]]:
    """A mobile or ID inside a longer group of digits that is no number as a whole.

    Where written digits meet spoken ones (13800138000两万: the 两 is 两万's) each part is
    tried on its own. Then a few stray digits (:data:`_STRAY`) glued to either end are allowed:
    the recogniser glues neighbouring digit words to a spoken number (是一 + 一三八… + 一定).
    Never more, so a long case or order number is not searched for lookalikes.
    """
    parts = _script_parts(group, text)
    hits = [h for part in parts if len(parts) > 1 for h in _whole(part)]
    if hits:
        return hits
    for part in [group, *parts] if len(parts) > 1 else [group]:
        hits = _stray(part)
        if hits:
            return hits
    return []


def _script_parts(group: list[tuple[str, int]], text: str) -> list[list[tuple[str, int]]]:
    """Split where written digits meet digit words; an X stays with the digits before it."""
    parts: list[list[tuple[str, int]]] = []
    for digit, i in group:
        if parts and (digit == "X" or _spoken(text[i]) == _spoken(text[parts[-1][-1][1]])):
            parts[-1].append((digit, i))
        else:
            parts.append([(digit, i)])
    return parts


def _spoken(ch: str) -> bool:
    return ch in _WORD_DIGITS


def _whole(part: list[tuple[str, int]]) -> list[tuple[int, int, MaskKind, str]]:
    number = "".join(d for d, _ in part)
    kind = classify_number(number)
    return [(part[0][1], part[-1][1] + 1, kind, number)] if kind is not None else []


def _stray(group: list[tuple[str, int]]) -> list[tuple[int, int, MaskKind, str]]:
    digits = "".join(d for d, _ in group)
    for size in (18, 11):
        if not size < len(digits) <= size + 2 * _STRAY:
            continue
        extra = len(digits) - size
        for lo in sorted({*range(min(_STRAY, extra) + 1), *range(max(0, extra - _STRAY),
                                                                 extra + 1)}):
            number = digits[lo:lo + size]
            kind = classify_number(number)
            if kind in (MaskKind.RESIDENT_ID, MaskKind.MOBILE):
                return [(group[lo][1], group[lo + size - 1][1] + 1, kind, number)]
    return []
