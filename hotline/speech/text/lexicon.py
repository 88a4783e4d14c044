"""Dialect words and phrases → Mandarin, so classification and summaries see one vocabulary.

Callers from Hubei say 冇得 and 堂客, Cantonese speakers say 老细 and 炒鱿鱼; the category rules
are written once in Mandarin. The lexicon (``lexicon.yaml``) maps dialect forms to Mandarin with
longest match first, so 搞么事 wins over 么事. Short forms that are also ordinary Mandarin (克,
人工, 蛮) carry context conditions, and ``keep`` lists words no entry may rewrite (克扣 stays 克扣,
not 去扣). The caller keeps the original text; this module never loses it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hotline.domain import Language
from hotline.ivr.loader import Document
from hotline.speech.text.offsets import Edit
from hotline.speech.text.yamlcheck import Checker, load_document

DEFAULT_FILE = Path(__file__).with_name("lexicon.yaml")
ENTRY_KEYS = ("dialect", "from", "to", "note", "preceded_by", "followed_by",
              "not_preceded_by", "not_followed_by")
_CONTEXT_KEYS = ENTRY_KEYS[4:]


@dataclass(frozen=True)
class LexiconEntry:
    """One dialect form and its Mandarin; the context lists are empty when not needed."""

    dialect: Language
    source: str
    target: str
    note: str = ""
    preceded_by: tuple[str, ...] = ()
    followed_by: tuple[str, ...] = ()
    not_preceded_by: tuple[str, ...] = ()
    not_followed_by: tuple[str, ...] = ()

    def fits(self, text: str, start: int) -> bool:
        """Whether the context around ``text[start:start+len(source)]`` allows the rewrite."""
        before, after = text[:start], text[start + len(self.source):]
        if self.preceded_by and not before.endswith(self.preceded_by):
            return False
        if self.followed_by and not after.startswith(self.followed_by):
            return False
        if self.not_preceded_by and before.endswith(self.not_preceded_by):
            return False
        return not (self.not_followed_by and after.startswith(self.not_followed_by))


@dataclass(frozen=True)
class Replacement:
    """A dialect form rewritten; ``start``/``end`` index the rewritten text.

    ``source_start``/``source_end`` index the text given to :meth:`Lexicon.apply`.
    """

    start: int
    end: int
    source: str
    target: str
    dialect: Language
    source_start: int
    source_end: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {"start": self.start, "end": self.end, "source": self.source,
                "target": self.target, "dialect": self.dialect.value}


class Lexicon:
    """Longest-match rewriting of dialect forms, optionally limited to some dialects."""

    def __init__(self, entries: Sequence[LexiconEntry], keep: Collection[str] = ()) -> None:
        """Index ``entries`` and ``keep`` words by first character, longest first."""
        self.entries = tuple(entries)
        self.keep = frozenset(keep)
        index: dict[str, list[LexiconEntry | str]] = {}
        items: list[LexiconEntry | str] = [*self.keep, *self.entries]
        for item in items:
            word = item if isinstance(item, str) else item.source
            index.setdefault(word[0], []).append(item)
        # Longest first; at equal length a keep word (a str) comes before an entry.
        for items in index.values():
            items.sort(key=lambda i: (-len(i if isinstance(i, str) else i.source),
                                      not isinstance(i, str)))
        self._index = index

    @classmethod
    def from_file(cls, path: Path | None = None) -> Lexicon:
        """Load and validate ``path`` (the packaged ``lexicon.yaml`` when ``None``)."""
        return parse_lexicon(load_document(path or DEFAULT_FILE))

    def apply(self, text: str, dialects: Collection[Language] | None = None,
              ) -> tuple[str, tuple[Replacement, ...]]:
        """Rewrite ``text``; return the Mandarin text and every replacement made, in order."""
        out, replacements, _ = self.rewrite(text, dialects)
        return out, replacements

    def rewrite(self, text: str, dialects: Collection[Language] | None = None,
                ) -> tuple[str, tuple[Replacement, ...], tuple[Edit, ...]]:
        """:meth:`apply` plus the edits that move positions into the output."""
        parts: list[str] = []
        found: list[Replacement] = []
        edits: list[Edit] = []
        i = out_len = 0
        while i < len(text):
            hit = self._match(text, i, dialects)
            if hit is None:
                parts.append(text[i])
                i += 1
                out_len += 1
                continue
            if isinstance(hit, str):  # a keep word: copy it through untouched
                parts.append(hit)
                i += len(hit)
                out_len += len(hit)
                continue
            end = i + len(hit.source)
            found.append(Replacement(out_len, out_len + len(hit.target), hit.source, hit.target,
                                     hit.dialect, i, end))
            edits.append(Edit(i, end, out_len, out_len + len(hit.target)))
            parts.append(hit.target)
            out_len += len(hit.target)
            i = end
        return "".join(parts), tuple(found), tuple(edits)

    def _match(self, text: str, i: int, dialects: Collection[Language] | None,
               ) -> LexiconEntry | str | None:
        for item in self._index.get(text[i], ()):
            if isinstance(item, str):
                if text.startswith(item, i):
                    return item
                continue
            if dialects is not None and item.dialect not in dialects:
                continue
            if text.startswith(item.source, i) and item.fits(text, i):
                return item
        return None


def parse_lexicon(doc: Document) -> Lexicon:
    """Validate a lexicon document; raise one error listing every problem."""
    check = Checker(doc)
    top = check.mapping((), doc.data, required=("entries",), allowed=("entries", "keep")) or {}
    keep = check.strings(("keep",), top.get("keep", []))
    raw = top.get("entries", [])
    if not isinstance(raw, list):
        check.wrong(("entries",), raw, "应为词条列表")
        raw = []
    entries: list[LexiconEntry] = []
    seen: dict[tuple[Any, ...], int] = {}
    for n, item in enumerate(raw):
        entry = _entry(check, ("entries", n), item)
        if entry is None:
            continue
        key = (entry.dialect, entry.source, *(getattr(entry, k) for k in _CONTEXT_KEYS))
        if key in seen:
            line = doc.where(("entries", seen[key]))[0]
            check.wrong(("entries", n, "from"), entry.source, f"与第 {line} 行的词条重复")
            continue
        seen[key] = n
        entries.append(entry)
    check.raise_if_any()
    return Lexicon(entries, keep)


def _entry(check: Checker, path: tuple[str | int, ...], item: Any) -> LexiconEntry | None:
    data = check.mapping(path, item, required=("dialect", "from", "to"), allowed=ENTRY_KEYS)
    if data is None or any(k not in data for k in ("dialect", "from", "to")):
        return None
    dialect = check.choice((*path, "dialect"), data["dialect"], "dialect",
                           [lang.value for lang in Language])
    source = check.string((*path, "from"), data["from"])
    target = check.string((*path, "to"), data["to"], empty=True)
    note = check.string((*path, "note"), data["note"]) if "note" in data else ""
    context = {k: tuple(check.strings((*path, k), data[k], single=True))
               for k in _CONTEXT_KEYS if k in data}
    if dialect is None or source is None or target is None or note is None:
        return None
    return LexiconEntry(Language(dialect), source, target, note, **context)
