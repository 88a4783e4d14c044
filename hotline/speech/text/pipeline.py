"""The text pipeline: recognised words → stored transcript text → draft ticket.

Order matters: words are joined first (Vosk separates them with spaces), the dialect lexicon
runs before numbers (幺儿 is a child, not a 1), numbers before masking (masking wants digits),
and masking last so nothing after it can bring a number back. The unmasked text never leaves
:meth:`TextPipeline.process`: the stored transcript is :attr:`Processed.text`, and the "as
recognised" view is :attr:`Processed.original_masked` (joined and masked, nothing else). The
full number survives only in the call recording.

Pure apart from loading the two YAML files; no recogniser here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from hotline.domain import Language, Speaker
from hotline.ivr.loader import Problem
from hotline.speech.text.classify import Suggestion
from hotline.speech.text.draft import DraftTicket, SegmentLike, Utterance, build_draft
from hotline.speech.text.lexicon import Lexicon, Replacement
from hotline.speech.text.masking import Masked, mask_numbers, rewrite_masked
from hotline.speech.text.numbers import NumberMatch, join_words, rewrite_numbers
from hotline.speech.text.offsets import map_span, overlaps
from hotline.speech.text.rules import Rules, load_rules
from hotline.speech.text.urgency import UrgencyFlag
from hotline.speech.text.yamlcheck import TextRulesError


@dataclass(frozen=True)
class Processed:
    """One recognised text after the pipeline; every ``start``/``end`` indexes :attr:`text`.

    Attributes:
        text: joined, dialect-normalised, numbers as digits, personal numbers masked; the
            text to store and show.
        original_masked: the recognised words joined and masked, nothing else rewritten; for
            a lawyer who doubts the normalisation.
        replacements: dialect words rewritten.
        numbers: numbers normalised (amounts, dates...), except masked ones.
        masked: personal numbers masked.
    """

    text: str
    original_masked: str
    replacements: tuple[Replacement, ...]
    numbers: tuple[NumberMatch, ...]
    masked: tuple[Masked, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form."""
        return {"text": self.text, "original_masked": self.original_masked,
                "replacements": [r.to_dict() for r in self.replacements],
                "numbers": [n.to_dict() for n in self.numbers],
                "masked": [m.to_dict() for m in self.masked]}


class TextPipeline:
    """Lexicon, rules and the pure stages that use them."""

    def __init__(self, lexicon: Lexicon, rules: Rules) -> None:
        """Use an already loaded lexicon and rules (tests build small ones)."""
        self.lexicon = lexicon
        self.rules = rules

    @classmethod
    def from_files(cls, lexicon_path: Path | None = None, rules_path: Path | None = None, *,
                   subcategories: Mapping[str, Collection[str]] | None = None,
                   ) -> TextPipeline:
        """Load both files (``None``: the defaults shipped next to this module).

        Raises:
            TextRulesError: listing every problem of both files, with file:line and key.
        """
        problems: list[Problem] = []
        lexicon: Lexicon | None = None
        rules: Rules | None = None
        try:
            lexicon = Lexicon.from_file(lexicon_path)
        except TextRulesError as exc:
            problems += exc.problems
        try:
            rules = load_rules(rules_path, subcategories)
        except TextRulesError as exc:
            problems += exc.problems
        if lexicon is None or rules is None:
            raise TextRulesError(problems)
        return cls(lexicon, rules)

    def process(self, raw_text: str, *,
                dialects: Collection[Language] | None = None) -> Processed:
        """Run one recognised text through join → lexicon → numbers → masking.

        Args:
            raw_text: the recogniser's output, words separated by spaces.
            dialects: limit the lexicon to the caller's dialects (``None``: all entries).
        """
        joined = join_words(raw_text)
        lexed, replacements, lex_edits = self.lexicon.rewrite(joined, dialects)
        numbered, numbers, number_edits = rewrite_numbers(lexed)
        text, masked, mask_edits = rewrite_masked(numbered)
        moved: list[Replacement] = []
        for r in replacements:
            start, end = map_span(*map_span(r.start, r.end, number_edits), mask_edits)
            moved.append(replace(r, start=start, end=end))
        kept = [replace(n, start=s, end=e) for n in numbers
                if not overlaps(n.start, n.end, mask_edits)
                for s, e in [map_span(n.start, n.end, mask_edits)]]
        return Processed(text=text, original_masked=mask_numbers(joined)[0],
                         replacements=tuple(moved), numbers=tuple(kept), masked=masked)

    def utterance(self, segment: SegmentLike, *,
                  dialects: Collection[Language] | None = None) -> Utterance:
        """A transcript segment, processed, as the draft builder wants it."""
        done = self.process(segment.text, dialects=dialects)
        known = {s.value for s in Speaker}
        speaker = Speaker(segment.speaker) if segment.speaker in known else Speaker.SYSTEM
        return Utterance(speaker, float(segment.start_s), float(segment.end_s), done.text,
                         done.numbers, len(done.masked))

    def draft(self, segments: Iterable[SegmentLike], *,
              dialects: Collection[Language] | None = None) -> DraftTicket:
        """The draft ticket of a call's segments (any order; sorted by start time here)."""
        ordered = sorted(segments, key=lambda s: (s.start_s, s.end_s))
        return build_draft([self.utterance(s, dialects=dialects) for s in ordered],
                           classifier=self.rules.classifier, urgency=self.rules.urgency,
                           parties=self.rules.parties)

    def classify(self, text: str) -> tuple[Suggestion, ...]:
        """Category suggestions for one already processed text."""
        return self.rules.classifier.classify(text)

    def urgency(self, text: str) -> tuple[UrgencyFlag, ...]:
        """Urgency flags for one already processed text (a live caller segment)."""
        return self.rules.urgency.detect(text)
