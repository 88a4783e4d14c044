"""Dialect lexicon: longest match, context rules, keep words, dialect filter, YAML problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.domain import Language
from hotline.speech.text.lexicon import Lexicon, LexiconEntry, parse_lexicon
from hotline.speech.text.yamlcheck import TextRulesError, parse_document


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return Lexicon.from_file()


def test_packaged_lexicon_has_a_useful_starter(lexicon: Lexicon) -> None:
    dialects = {e.dialect for e in lexicon.entries}
    assert len(lexicon.entries) >= 40
    assert {Language.HUBEI, Language.SOUTHWESTERN, Language.CANTONESE} <= dialects


@pytest.mark.parametrize(("spoken", "mandarin"), [
    ("你搞么事", "你干什么"),
    ("我不晓得么样办", "我不知道怎么样办"),
    ("屋里冇得钱", "家里没有钱"),
    ("我堂客带着伢儿回娘家了", "我妻子带着孩子回娘家了"),
    ("老板儿蛮凶", "老板很凶"),
    ("老细炒咗鱿鱼", "老板解雇了"),
    ("佢冇畀人工我点算", "他没有给工资我怎么办"),
    ("咩事", "什么事"),
    ("我每日返工", "我每日上班"),
    ("娃儿遭打了", "孩子被打了"),
])
def test_dialect_words_become_mandarin(lexicon: Lexicon, spoken: str, mandarin: str) -> None:
    assert lexicon.apply(spoken)[0] == mandarin


def test_longest_match_wins() -> None:
    lex = Lexicon([LexiconEntry(Language.HUBEI, "么事", "什么"),
                   LexiconEntry(Language.HUBEI, "搞么事", "干什么")])
    text, reps = lex.apply("你搞么事")
    assert text == "你干什么"
    assert [(r.source, r.target) for r in reps] == [("搞么事", "干什么")]


def test_replacements_carry_positions_in_both_texts(lexicon: Lexicon) -> None:
    text, reps = lexicon.apply("我屋里老倌打我")
    assert text == "我家里丈夫打我"
    for r in reps:
        assert text[r.start:r.end] == r.target
        assert "我屋里老倌打我"[r.source_start:r.source_end] == r.source
    assert [r.dialect for r in reps] == [Language.HUBEI, Language.HUBEI]


@pytest.mark.parametrize(("spoken", "expected"), [
    ("我明天克法院", "我明天去法院"),
    ("你克哪里", "你去哪里"),
    ("老板克扣我工资", "老板克扣我工资"),  # keep word
    ("买了五百克肉", "买了五百克肉"),  # a weight after a numeral
    ("要克服困难", "要克服困难"),
    ("人工智能客服", "人工智能客服"),
    ("装修要返工", "装修要返工"),  # Mandarin 返工 = redo
    ("这人真野蛮", "这人真野蛮"),
    ("怎么样", "怎么样"),  # 么样 inside 怎么样 stays
])
def test_context_rules_and_keep_words(lexicon: Lexicon, spoken: str, expected: str) -> None:
    assert lexicon.apply(spoken)[0] == expected


def test_dialect_filter_limits_entries(lexicon: Lexicon) -> None:
    assert lexicon.apply("佢晓得", dialects={Language.HUBEI})[0] == "佢知道"
    assert lexicon.apply("佢晓得", dialects={Language.CANTONESE})[0] == "他晓得"
    assert lexicon.apply("佢晓得", dialects=set())[0] == "佢晓得"


def test_mandarin_text_is_untouched(lexicon: Lexicon) -> None:
    text = "我在公司上班三年了，老公和老婆都没有签劳动合同"
    assert lexicon.apply(text) == (text, ())


BROKEN = """\
entries:
  - {dialect: hubei, from: 么样, to: 怎么样}
  - {dialect: hubeihua, from: 晓得, to: 知道}
  - {dialect: hubei, to: 没有}
  - {dialect: hubei, from: 蛮, to: 很, colour: red}
  - {dialect: hubei, from: 么样, to: 怎么样}
  - dialect: cantonese
    from: 人工
    to: 工资
    not_followed_by: {智能: 1}
keep: 克扣
"""


def test_broken_lexicon_lists_every_problem_with_file_line_and_key() -> None:
    with pytest.raises(TextRulesError) as info:
        parse_lexicon(parse_document(BROKEN, "my-lexicon.yaml"))
    lines = str(info.value).splitlines()
    assert lines[0] == "文本规则文件有 6 处问题:"
    report = "\n".join(lines)
    assert "my-lexicon.yaml:3:" in report and "entries.1.dialect" in report
    assert "'hubeihua'" in report and "是否想写 'hubei'" in report
    assert "my-lexicon.yaml:4:" in report and "缺少必填项 'from'" in report
    assert "my-lexicon.yaml:5:" in report and "entries.3.colour" in report
    assert "my-lexicon.yaml:6:" in report and "与第 2 行的词条重复" in report
    assert "my-lexicon.yaml:10:" in report and "entries.5.not_followed_by" in report
    assert "my-lexicon.yaml:11:" in report and "keep" in report
    assert info.value.code == "config.text_rules"
    assert all(p.line > 0 for p in info.value.problems)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "lexicon.yaml"
    path.write_text("entries:\n  - {dialect: hubei, from: 么样\n", encoding="utf-8")
    with pytest.raises(TextRulesError) as info:
        Lexicon.from_file(path)
    assert f"{path}:3:" in str(info.value) and "YAML 语法错误" in str(info.value)


def test_missing_entries_and_wrong_root() -> None:
    with pytest.raises(TextRulesError) as info:
        parse_lexicon(parse_document("- 么样\n", "x.yaml"))
    assert "应为映射" in str(info.value)
    with pytest.raises(TextRulesError) as info:
        parse_lexicon(parse_document("keep: []\n", "x.yaml"))
    assert "缺少必填项 'entries'" in str(info.value)
