"""Draft the ticket of a call from its transcript, for the lawyer to correct rather than type.

Every call forms a ticket (DOMAIN.md) and the lawyer fills it in during wrap-up, with the next
caller waiting. From the processed segments we propose the category, a 事项 summary made of the
caller's own key sentences (those with amounts, dates, the other party or the category's words),
the amounts, dates and parties mentioned, urgency flags and green-channel hints. The lawyer's
segments help the category (at half weight: they often restate the question) but never the
summary or the flags: 如果他再打您就报警 is advice, not an emergency.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from hotline.domain import Category, GreenReason, Speaker
from hotline.speech.text.classify import Classifier, Suggestion
from hotline.speech.text.numbers import NumberKind, NumberMatch
from hotline.speech.text.phrases import drop_covered, find
from hotline.speech.text.urgency import Transfer, UrgencyDetector, UrgencyFlag

SUMMARY_LIMIT = 300  # characters of the 事项 field the draft fills
LAWYER_FACTOR = 0.5
ELDERLY_AGE = 70  # DOMAIN.md: elderly callers (e.g. 70+) may get a home visit
MIGRANT_CUES = ("工地", "包工头", "农民工", "民工", "打工", "建筑队", "干活")
_FILLER = "，。！？、 "


class SegmentLike(Protocol):
    """What the speech service's transcript segments offer (any such object will do)."""

    @property
    def speaker(self) -> str:  # noqa: D102 - a Speaker value: caller, lawyer, system
        ...

    @property
    def start_s(self) -> float:  # noqa: D102
        ...

    @property
    def end_s(self) -> float:  # noqa: D102
        ...

    @property
    def text(self) -> str:  # noqa: D102
        ...


@dataclass(frozen=True)
class Segment:
    """A transcript segment: who spoke, when (seconds from answer) and what was recognised."""

    speaker: Speaker
    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True)
class Utterance:
    """A segment after the text pipeline: normalised, masked text and its numbers."""

    speaker: Speaker
    start_s: float
    end_s: float
    text: str
    numbers: tuple[NumberMatch, ...] = ()
    masked: int = 0


@dataclass(frozen=True)
class DraftTicket:
    """The proposed ticket fields; every text in it is already masked."""

    category: Category | None
    subcategory: str | None
    suggestions: tuple[Suggestion, ...]
    summary: str
    amounts: tuple[str, ...]
    dates: tuple[str, ...]
    durations: tuple[str, ...]
    parties: tuple[str, ...]
    urgency: tuple[UrgencyFlag, ...]
    transfers: tuple[Transfer, ...]
    green_reasons: tuple[GreenReason, ...]
    masked_numbers: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form for the API and the console."""
        return {
            "category": self.category.value if self.category else None,
            "category_label": self.category.label if self.category else None,
            "subcategory": self.subcategory,
            "suggestions": [s.to_dict() for s in self.suggestions],
            "summary": self.summary,
            "amounts": list(self.amounts),
            "dates": list(self.dates),
            "durations": list(self.durations),
            "parties": list(self.parties),
            "urgency": [f.to_dict() for f in self.urgency],
            "transfers": [t.value for t in self.transfers],
            "green_reasons": [r.value for r in self.green_reasons],
            "masked_numbers": self.masked_numbers,
        }


def build_draft(utterances: Sequence[Utterance], *, classifier: Classifier,
                urgency: UrgencyDetector, parties: Sequence[str]) -> DraftTicket:
    """The draft ticket of one call's processed segments (in time order)."""
    spoken = [u for u in utterances if u.speaker in (Speaker.CALLER, Speaker.LAWYER)]
    suggestions = classifier.classify_parts(
        [(u.text, 1.0 if u.speaker is Speaker.CALLER else LAWYER_FACTOR) for u in spoken])
    caller = [u for u in spoken if u.speaker is Speaker.CALLER]
    flags = urgency.detect_parts([u.text for u in caller])
    top = suggestions[0] if suggestions else None
    evidence_parts = {spoken[e.part] for e in top.evidence} if top else set()
    urgent_parts = {caller[e.part] for f in flags for e in f.evidence}
    found_parties = _parties(caller, parties)
    transfers = tuple(dict.fromkeys(t for f in flags for t in f.transfers))
    return DraftTicket(
        category=top.category if top else None,
        subcategory=top.subcategory if top else None,
        suggestions=suggestions,
        summary=_summary(caller, evidence_parts, urgent_parts, parties),
        amounts=_numbers(caller, NumberKind.AMOUNT),
        dates=_numbers(caller, NumberKind.DATE),
        durations=_numbers(caller, NumberKind.DURATION),
        parties=found_parties,
        urgency=flags,
        transfers=transfers,
        green_reasons=_green(caller, top),
        masked_numbers=sum(u.masked for u in utterances),
    )


def _numbers(caller: Sequence[Utterance], kind: NumberKind) -> tuple[str, ...]:
    return tuple(dict.fromkeys(m.text for u in caller for m in u.numbers if m.kind is kind))


def _parties(caller: Sequence[Utterance], parties: Sequence[str]) -> tuple[str, ...]:
    found = [h.phrase for u in caller for h in drop_covered(find(u.text, parties))]
    return tuple(dict.fromkeys(found))


def _summary(caller: Sequence[Utterance], evidence_in: set[Utterance],
             urgent_in: set[Utterance], parties: Sequence[str]) -> str:
    """The caller's key sentences in call order, at most :data:`SUMMARY_LIMIT` characters.

    Sentences are scored (urgency 3, category words 2, amounts 2, dates and durations 1, a
    party 1); the best are kept within the limit. With nothing scored, the caller's first
    words are the best we have.
    """
    scored: list[tuple[float, int, str]] = []
    seen: set[str] = set()
    for n, u in enumerate(caller):
        text = u.text.strip(_FILLER)
        if not text or text in seen:
            continue
        seen.add(text)
        kinds = {m.kind for m in u.numbers}
        score = (3 * (u in urgent_in) + 2 * (u in evidence_in)
                 + 2 * (NumberKind.AMOUNT in kinds)
                 + bool(kinds & {NumberKind.DATE, NumberKind.DURATION})
                 + bool(find(text, parties)))
        scored.append((score, n, text))
    chosen = [s for s in scored if s[0] > 0] or scored
    chosen.sort(key=lambda s: (-s[0], s[1]))
    kept: list[tuple[int, str]] = []
    used = 0
    for _, n, text in chosen:
        cost = len(text) + (1 if kept else 0)
        if used + cost <= SUMMARY_LIMIT - 1:  # room for the final 。
            kept.append((n, text))
            used += cost
    if not kept and chosen:
        return chosen[0][2][: SUMMARY_LIMIT - 1] + "…"
    return "，".join(text for _, text in sorted(kept)) + ("。" if kept else "")


def _green(caller: Sequence[Utterance], top: Suggestion | None) -> tuple[GreenReason, ...]:
    """Green-channel hints (Legal Aid Law art. 42): migrant workers' wages, elderly callers."""
    reasons: list[GreenReason] = []
    words = "".join(u.text for u in caller)
    if (top is not None and top.category is Category.LABOR and top.subcategory in ("欠薪", "工伤")
            and any(cue in words for cue in MIGRANT_CUES)):
        reasons.append(GreenReason.MIGRANT_WAGES)
    for u in caller:
        for m in u.numbers:
            before = u.text[max(0, m.start - 4):m.start]
            age = m.value.rstrip("多周岁")
            if (m.kind is NumberKind.AGE and ("我" in before or "今年" in before)
                    and age.isdigit() and int(age) >= ELDERLY_AGE):
                reasons.append(GreenReason.ELDERLY)
    return tuple(dict.fromkeys(reasons))
