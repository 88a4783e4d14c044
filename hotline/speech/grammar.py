"""Spoken menu choices: the Vosk grammar of a menu and the rule that rejects forced matches.

A ``gather`` with ``speech:`` lets a caller say "劳动" instead of pressing 1. The worker runs
Vosk's recogniser in grammar mode with the menu's phrases (:func:`grammar_json`) and, on the
same audio, an unconstrained recogniser (the free-text pass). Grammar mode has no "none of
these": it forces any speech, a cough or a whole sentence onto the closest phrase, and the
``[unk]`` entry that should catch the rest may be missing from a model's vocabulary (it is then
silently dropped). Word confidences are not a reliable reject signal either (measured, see
``TELEPHONY_NOTES.md``). So :func:`decide` judges the two results together and rejects
whenever the grammar's answer is not believable; the IVR then asks for a key instead, because
DTMF always works and a wrong menu costs the caller more than one extra key press.

Pure: no Vosk import. Results are the parsed JSON of ``KaldiRecognizer.FinalResult()`` with
``SetWords(True)``: ``{"text": "劳动", "result": [{"word", "conf", "start", "end"}, ...]}``.

Phrases must be words (or space-separated words) of the model's vocabulary: Chinese Vosk
models have a word-segmented vocabulary, and a phrase it does not contain can never be
recognised (Vosk logs a warning and drops it). This module does not segment text; write
``法律 援助`` when the model knows 法律 and 援助 but not 法律援助. Comparisons ignore spaces, so
the model's segmentation of its answer does not matter.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

UNK = "[unk]"
# Shorter than this is a click, a cough or a breath, not a word (one Han syllable ≈ 0.2-0.3 s
# on the phone; two-syllable menu words take ≥ 0.4 s).
MIN_SPEECH_SECONDS = 0.25
# Longer than this is a sentence ("我想问一下我老板欠了三个月工资怎么办"), not a menu answer:
# grammar mode maps such a story onto whichever phrase shares a syllable, and the story is
# better told to the lawyer after a key press.
MAX_SPEECH_SECONDS = 4.0
# The same for the free-text pass's word count (Vosk's Chinese words are 1-4 characters).
MAX_FREE_WORDS = 6


class Reason(StrEnum):
    """Why :func:`decide` accepted or rejected an utterance (kept in logs and tests)."""

    ACCEPTED = "accepted"  # 识别成功
    EMPTY = "empty"  # 没有文字: silence or noise the recogniser dropped
    UNKNOWN = "unknown"  # [unk]: the grammar's own "none of these"
    NOT_A_PHRASE = "not_a_phrase"  # grammar text is none of this menu's phrases
    TOO_SHORT = "too_short"  # 太短: a click or cough forced onto a phrase
    TOO_LONG = "too_long"  # 太长: a sentence, not a menu answer
    MISMATCH = "mismatch"  # 自由识别与语法结果毫无共同字: the caller said something else


@dataclass(frozen=True)
class Decision:
    """The verdict on one utterance: the route key (None: rejected), why, and the phrase."""

    route: str | None
    reason: Reason
    phrase: str = ""


def split_phrase(phrase: str) -> str:
    """A phrase as the grammar lists it: unchanged.

    Segmenting Chinese needs the model's own vocabulary, which this pure module does not have;
    guessing would produce words the model lacks, which Vosk drops silently. The flow's author
    writes phrases as vocabulary words (spaces between words where needed) instead, and this
    hook is where a vocabulary-aware segmentation would go.
    """
    return phrase


def phrase_key(text: str) -> str:
    """``text`` without spaces, for comparing a recogniser's words with a written phrase."""
    return "".join(text.split())


def grammar_json(phrases: Iterable[str]) -> str:
    """The grammar argument of ``KaldiRecognizer(model, rate, grammar)`` for these phrases.

    Duplicates are dropped (first one kept); ``[unk]`` is appended so that a model that has it
    can say "none of these" itself. :func:`decide` does not rely on it being there.
    """
    seen: set[str] = set()
    out: list[str] = []
    for phrase in phrases:
        split = split_phrase(phrase.strip())
        if split and phrase_key(split) not in seen:
            seen.add(phrase_key(split))
            out.append(split)
    out.append(UNK)
    return json.dumps(out, ensure_ascii=False)


def decide(grammar_result: dict[str, Any], free_result: dict[str, Any] | None,
           audio_seconds: float, phrases: Iterable[tuple[str, str]]) -> Decision:
    """Accept the grammar's phrase only when nothing suggests it was forced.

    Args:
        grammar_result: the grammar-mode recogniser's final result.
        free_result: the unconstrained recogniser's final result on the same audio, or None
            when no free-text pass ran (its two rules are then skipped).
        audio_seconds: length of the utterance's audio; used for the length rules only when
            neither result has word timings (``SetWords`` off), since it includes the silence
            before and after the words.
        phrases: ``(phrase, route key)`` pairs, as in ``Listen.phrases``.

    Returns:
        The route and ``Reason.ACCEPTED``, or route None and the first rule that rejected.
    """
    routes = {phrase_key(p): (p, route) for p, route in phrases}
    words = _words(grammar_result)
    text = phrase_key(str(grammar_result.get("text", "")))
    # Nothing recognised: nothing to route.
    if not text:
        return Decision(None, Reason.EMPTY)
    # The grammar's own reject, when the model has [unk].
    if UNK in words or UNK in text:
        return Decision(None, Reason.UNKNOWN)
    # Not this menu's phrase: a recogniser set up for another menu, or a partial match.
    if text not in routes:
        return Decision(None, Reason.NOT_A_PHRASE)
    phrase, route = routes[text]
    free_words = _words(free_result) if free_result is not None else []
    seconds = _span(free_result) if free_result is not None else None
    if seconds is None:
        seconds = _span(grammar_result)
    if seconds is None:
        seconds = audio_seconds
    # A click, cough or breath forced onto a phrase.
    if seconds < MIN_SPEECH_SECONDS:
        return Decision(None, Reason.TOO_SHORT, phrase)
    # A sentence forced onto a phrase: tell it to the lawyer, choose the menu by key.
    if seconds > MAX_SPEECH_SECONDS or len(free_words) > MAX_FREE_WORDS:
        return Decision(None, Reason.TOO_LONG, phrase)
    # The caller said something else: the free reading shares no character with the phrase
    # (grammar mode turned "喂你好" into "合同"). A free pass that heard nothing at all means
    # noise, which is rejected the same way.
    if free_result is not None:
        free = phrase_key(str(free_result.get("text", ""))).replace(UNK, "")
        if not set(free) & set(phrase_key(phrase)):
            return Decision(None, Reason.MISMATCH, phrase)
    return Decision(route, Reason.ACCEPTED, phrase)


def _words(result: dict[str, Any] | None) -> list[str]:
    items = (result or {}).get("result") or []
    return [str(w.get("word", "")) for w in items if isinstance(w, dict)]


def _span(result: dict[str, Any] | None) -> float | None:
    """Seconds from the first word's start to the last word's end (None: no timings)."""
    items = [w for w in (result or {}).get("result") or []
             if isinstance(w, dict) and "start" in w and "end" in w
             and w.get("word") != UNK]
    if not items:
        return None
    return float(max(w["end"] for w in items)) - float(min(w["start"] for w in items))
