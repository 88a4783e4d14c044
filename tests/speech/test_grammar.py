"""The menu grammar and the rejection rule, with hand-written Vosk results (no model needed)."""

import json

import pytest

from hotline.speech.grammar import (
    MAX_FREE_WORDS,
    UNK,
    Decision,
    Reason,
    decide,
    grammar_json,
    phrase_key,
    split_phrase,
)

PHRASES = (("劳动", "1"), ("工资", "1"), ("欠薪", "1"), ("婚姻", "2"), ("离婚", "2"),
           ("合同", "3"), ("法律援助", "4"))


def result(*words: tuple[str, float, float], text: str | None = None) -> dict:
    """A Vosk final result with SetWords(True): words as (word, start, end)."""
    return {"text": " ".join(w for w, _, _ in words) if text is None else text,
            "result": [{"word": w, "conf": 1.0, "start": s, "end": e} for w, s, e in words]}


# --- grammar -------------------------------------------------------------------------------

def test_grammar_lists_phrases_as_given_plus_unk():
    assert json.loads(grammar_json(["劳动", "法律 援助", "劳动", " 合同 "])) == [
        "劳动", "法律 援助", "合同", UNK]


def test_grammar_is_utf8_json_not_escaped():
    # KaldiRecognizer takes the grammar as a str; escaped \\u sequences would also parse, but
    # the readable form is what ends up in logs.
    assert grammar_json(["劳动"]) == '["劳动", "[unk]"]'


def test_grammar_drops_phrases_that_differ_only_in_spacing():
    assert json.loads(grammar_json(["法律援助", "法律 援助"])) == ["法律援助", UNK]


def test_split_phrase_leaves_the_phrase_alone():
    assert split_phrase("法律援助") == "法律援助"
    assert split_phrase("法律 援助") == "法律 援助"
    assert phrase_key(" 法律  援助 ") == "法律援助"


# --- accept --------------------------------------------------------------------------------

def test_accepts_a_phrase_the_free_pass_agrees_with():
    grammar = result(("劳动", 0.5, 1.1))
    free = result(("劳动", 0.5, 1.1))
    assert decide(grammar, free, 1.6, PHRASES) == Decision("1", Reason.ACCEPTED, "劳动")


def test_accepts_when_the_free_pass_shares_a_character():
    # The free recogniser heard 劳务 (a near word): one shared character is enough.
    grammar = result(("劳动", 0.4, 1.0))
    free = result(("劳务", 0.4, 1.0))
    assert decide(grammar, free, 1.5, PHRASES).route == "1"


def test_accepts_a_phrase_segmented_differently_by_the_model():
    grammar = result(("法律", 0.3, 0.8), ("援助", 0.8, 1.3))
    free = result(("法律", 0.3, 0.8), ("援助", 0.8, 1.3))
    assert decide(grammar, free, 1.8, PHRASES) == Decision("4", Reason.ACCEPTED, "法律援助")


def test_accepts_without_a_free_pass():
    assert decide(result(("离婚", 0.2, 0.9)), None, 1.2, PHRASES).route == "2"


def test_without_word_timings_the_audio_length_is_used():
    grammar = {"text": "合同"}
    assert decide(grammar, {"text": "合同"}, 1.0, PHRASES).route == "3"
    assert decide(grammar, {"text": "合同"}, 0.1, PHRASES).reason is Reason.TOO_SHORT
    assert decide(grammar, {"text": "合同"}, 9.0, PHRASES).reason is Reason.TOO_LONG


# --- reject: one test per rule -------------------------------------------------------------

def test_rejects_empty_text():
    assert decide({"text": ""}, None, 2.0, PHRASES) == Decision(None, Reason.EMPTY)
    assert decide({}, None, 2.0, PHRASES).reason is Reason.EMPTY


def test_rejects_unk():
    assert decide(result((UNK, 0.2, 1.0)), None, 1.5, PHRASES) == Decision(None, Reason.UNKNOWN)
    assert decide({"text": "[unk]"}, None, 1.5, PHRASES).reason is Reason.UNKNOWN


def test_rejects_text_that_is_not_a_phrase_of_this_menu():
    assert decide(result(("调解", 0.2, 0.8)), None, 1.0, PHRASES) == Decision(
        None, Reason.NOT_A_PHRASE)


def test_rejects_a_click_forced_onto_a_phrase():
    grammar = result(("合同", 0.50, 0.62))
    free = result(("合", 0.50, 0.62))
    assert decide(grammar, free, 0.9, PHRASES) == Decision(None, Reason.TOO_SHORT, "合同")


def test_rejects_a_long_utterance():
    grammar = result(("工资", 0.3, 5.1))
    free = result(("老板", 0.3, 1.0), ("拖欠", 1.0, 1.8), ("工资", 1.8, 2.6),
                  ("三个月", 2.6, 3.8), ("了", 3.8, 4.2), ("怎么办", 4.2, 5.1))
    assert decide(grammar, free, 5.5, PHRASES) == Decision(None, Reason.TOO_LONG, "工资")


def test_rejects_too_many_free_words_even_when_spoken_fast():
    words = [(w, 0.2 + i * 0.3, 0.5 + i * 0.3) for i, w in enumerate(
        ["我", "想", "问", "一下", "工资", "的", "事"])]
    assert len(words) > MAX_FREE_WORDS
    grammar = result(("工资", 1.1, 1.4))
    assert decide(grammar, result(*words), 2.5, PHRASES).reason is Reason.TOO_LONG


def test_rejects_when_the_free_pass_heard_something_else():
    # "喂你好" forced onto 合同 by grammar mode: no character in common.
    grammar = result(("合同", 0.3, 1.0))
    free = result(("喂", 0.3, 0.5), ("你好", 0.5, 1.0))
    assert decide(grammar, free, 1.4, PHRASES) == Decision(None, Reason.MISMATCH, "合同")


def test_rejects_when_the_free_pass_heard_nothing():
    grammar = result(("婚姻", 0.3, 0.9))
    assert decide(grammar, {"text": ""}, 1.2, PHRASES).reason is Reason.MISMATCH


@pytest.mark.parametrize("reason", [r for r in Reason if r is not Reason.ACCEPTED])
def test_every_rejection_has_no_route(reason):
    cases = {
        Reason.EMPTY: ({"text": ""}, None, 1.0),
        Reason.UNKNOWN: ({"text": UNK}, None, 1.0),
        Reason.NOT_A_PHRASE: (result(("你好", 0, 1)), None, 1.0),
        Reason.TOO_SHORT: (result(("劳动", 0, 0.1)), None, 1.0),
        Reason.TOO_LONG: (result(("劳动", 0, 4.5)), None, 5.0),
        Reason.MISMATCH: (result(("劳动", 0, 1)), result(("喂", 0, 1)), 1.0),
    }
    grammar, free, seconds = cases[reason]
    decision = decide(grammar, free, seconds, PHRASES)
    assert decision.reason is reason and decision.route is None
