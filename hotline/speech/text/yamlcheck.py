"""Load the text pipeline's YAML files and report every problem with file:line:col and key path.

The lexicon and the rules are edited by hotline staff, not programmers, so a typo must point at
the line to fix. We reuse the flow loader (:mod:`hotline.ivr.loader`), which already keeps the
position of every key and value and reports YAML syntax, encoding and duplicate keys, and its
problem codes, whose Chinese wording already exists (``flow.missing_key``, ``flow.wrong_value``,
...). Problems are collected, never raised one by one; :class:`TextRulesError` carries them all.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any

from hotline.errors import ConfigError
from hotline.ivr.loader import Document, Path_, Problem, parse_text, read_file

MAX_BYTES = 2_000_000  # a lexicon of tens of thousands of entries still fits


class TextRulesError(ConfigError):
    """A lexicon or rules file is wrong; ``problems`` lists every problem found.

    It is a :class:`ConfigError` so the CLI and the service start-up treat it like any other bad
    configuration; ``str()`` is the full list, one ``file:line:col: key: message`` per line,
    because the first problem alone rarely is enough to fix a hand-edited file.
    """

    default_code = "config.text_rules"

    def __init__(self, problems: list[Problem] | None = None, /, **_params: Any) -> None:
        problems = problems or []
        files = sorted({p.file for p in problems})
        super().__init__("config.text_rules", count=len(problems), files=", ".join(files))
        self.problems = problems

    def __str__(self) -> str:
        head = f"文本规则文件有 {len(self.problems)} 处问题:"
        return "\n".join([head, *(f"  {p.render()}" for p in self.problems)])


def load_document(path: Path) -> Document:
    """Read one YAML file with positions; raise :class:`TextRulesError` if it cannot be parsed."""
    doc, problems = read_file(path, max_bytes=MAX_BYTES)
    if doc is None or problems:
        raise TextRulesError(problems)
    return doc


def parse_document(text: str, name: str) -> Document:
    """Parse YAML text with positions (tests and packaged defaults); raise on syntax problems."""
    doc, problems = parse_text(text, name)
    if doc is None or problems:
        raise TextRulesError(problems)
    return doc


def dotted(path: Path_) -> str:
    """``("entries", 3, "from")`` → ``entries.3.from``, the key path shown to the editor."""
    return ".".join(str(p) for p in path) or "(根)"


class Checker:
    """Collects problems about one document; each method returns the value or ``None`` if bad."""

    def __init__(self, doc: Document) -> None:
        """Check ``doc``; problems accumulate in :attr:`problems`."""
        self.doc = doc
        self.problems: list[Problem] = []

    def add(self, path: Path_, code: str, *, at_key: bool = False, **params: Any) -> None:
        """Record a problem at ``path`` (its key with ``at_key``)."""
        self.problems.append(self.doc.problem(path, dotted(path), code, at_key=at_key, **params))

    def wrong(self, path: Path_, value: Any, expected: str) -> None:
        """Record a value of the wrong shape, quoting it as written in YAML."""
        self.add(path, "flow.wrong_value", value=show_value(value), expected=expected)

    def mapping(self, path: Path_, value: Any, *, required: Iterable[str] = (),
                allowed: Collection[str] | None = None) -> dict[str, Any] | None:
        """A mapping with its required keys present and no unknown keys."""
        if not isinstance(value, dict):
            self.add(path, "flow.not_mapping")
            return None
        for key in required:
            if key not in value:
                self.add(path, "flow.missing_key", key=key)
        if allowed is not None:
            for key in value:
                if key not in allowed:
                    self.add((*path, key), "flow.unknown_property", at_key=True, name=key,
                             hint=hint(str(key), allowed), allowed=", ".join(allowed))
        return value

    def string(self, path: Path_, value: Any, *, empty: bool = False) -> str | None:
        """A string (non-empty unless ``empty``)."""
        if not isinstance(value, str) or (not empty and not value.strip()):
            self.wrong(path, value, "应为非空字符串" if not empty else "应为字符串")
            return None
        return value

    def strings(self, path: Path_, value: Any, *, single: bool = False) -> list[str]:
        """A list of non-empty strings (one bare string too, with ``single``)."""
        if single and isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.wrong(path, value, "应为字符串列表")
            return []
        out: list[str] = []
        for i, item in enumerate(value):
            text = self.string((*path, i), item)
            if text is not None:
                out.append(text)
        return out

    def number(self, path: Path_, value: Any, *, low: float, high: float,
               nonzero: bool = False) -> float | None:
        """A number within ``[low, high]`` (booleans are not numbers here)."""
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or not low <= value <= high or (nonzero and value == 0):
            zero = ", 且不为 0" if nonzero else ""
            self.wrong(path, value, f"应为 {low:g} 到 {high:g} 之间的数字{zero}")
            return None
        return float(value)

    def choice(self, path: Path_, value: Any, field: str, allowed: Collection[str], *,
               at_key: bool = False) -> str | None:
        """One of a closed vocabulary (category codes, dialects, transfer numbers)."""
        text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
        if text is None or text not in allowed:
            close = hint(str(value), allowed).removeprefix(", ")
            self.add(path, "flow.bad_field_value", at_key=at_key, field=field,
                     value=show_value(value) if text is None else text,
                     allowed=", ".join(allowed) + (f"; {close}" if close else ""))
            return None
        return text

    def weights(self, path: Path_, value: Any) -> dict[str, float]:
        """A ``{phrase: weight}`` mapping, the shape of every phrase table in rules.yaml."""
        table = self.mapping(path, value)
        out: dict[str, float] = {}
        for phrase, weight in (table or {}).items():
            if not str(phrase).strip():
                self.add((*path, phrase), "flow.bad_key", at_key=True)
                continue
            number = self.number((*path, phrase), weight, low=-10, high=10, nonzero=True)
            if number is not None:
                out[str(phrase)] = number
        return out

    def raise_if_any(self) -> None:
        """Raise every problem found so far, sorted by position."""
        if self.problems:
            self.problems.sort(key=lambda p: (p.file, p.line, p.col))
            raise TextRulesError(self.problems)


def show_value(value: Any) -> str:
    """A value as written in YAML (true, null, 'text'), not Python's repr, cut to one line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return "{…}" if isinstance(value, dict) else "[…]"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def hint(name: str, known: Iterable[str]) -> str:
    """``, 是否想写 'labor'?`` when a close known name exists, else empty."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f", 是否想写 {close[0]!r}?" if close else ""
