"""Find rule phrases in a transcript, minding negation and phrases that only look alike.

Classification and urgency both look for hand-written phrases; both need the same two guards.
A negation just before a phrase cancels it (他没有打我, 不是离婚的事), and a longer ordinary
phrase that overlaps a rule phrase cancels it too (打我电话 is a phone call, not 打我). Plain
substring search is enough: phrases are short, transcripts a few thousand characters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hotline.ivr.loader import Path_
from hotline.speech.text.yamlcheck import Checker


@dataclass(frozen=True)
class Evidence:
    """Where a rule phrase was found: ``text[start:end]`` of part ``part`` of the input."""

    phrase: str
    start: int
    end: int
    weight: float = 1.0
    part: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {"phrase": self.phrase, "start": self.start, "end": self.end,
                "weight": self.weight, "part": self.part}


@dataclass(frozen=True)
class Negation:
    """Negation words that cancel a phrase right after them, maybe across one gap word."""

    words: tuple[str, ...] = ()
    gap: tuple[str, ...] = ()

    def negates(self, text: str, start: int) -> bool:
        """Whether the phrase starting at ``start`` is negated (没有打我, 没有再打我)."""
        if not self.words:
            return False
        before = text[max(0, start - 24):start]  # negation and gap words are short
        if before.endswith(self.words):
            return True
        return any(before.endswith(gap) and before[:-len(gap)].endswith(self.words)
                   for gap in self.gap)


def find(text: str, phrases: Iterable[str]) -> list[Evidence]:
    """Every occurrence of every phrase, overlapping ones included, in text order."""
    hits: list[Evidence] = []
    for phrase in phrases:
        at = text.find(phrase)
        while at != -1:
            hits.append(Evidence(phrase, at, at + len(phrase)))
            at = text.find(phrase, at + 1)
    hits.sort(key=lambda h: (h.start, -h.end))
    return hits


def drop_overlapped(hits: Sequence[Evidence], blockers: Sequence[Evidence]) -> list[Evidence]:
    """Hits that no blocker overlaps (打电话 removes 打我 in 他打我电话)."""
    return [h for h in hits if not any(h.start < b.end and b.start < h.end for b in blockers)]


def drop_covered(hits: Sequence[Evidence]) -> list[Evidence]:
    """Hits not strictly inside a longer hit (拖欠工资 counts once, not also as 工资)."""
    return [h for h in hits if not any(
        o.start <= h.start and h.end <= o.end and (o.end - o.start) > (h.end - h.start)
        for o in hits)]


def parse_negation(check: Checker, path: Path_, data: Any) -> Negation:
    """Read a ``negation: {words: [...], gap: [...]}`` section."""
    table = check.mapping(path, data, required=("words",), allowed=("words", "gap"))
    if table is None:
        return Negation()
    words = check.strings((*path, "words"), table.get("words", []))
    gap = check.strings((*path, "gap"), table.get("gap", []))
    return Negation(tuple(words), tuple(gap))
