"""The whole pipeline: processed text, masking of both views, and the draft ticket."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.domain import Category, GreenReason, Language, Speaker
from hotline.speech.text.draft import SUMMARY_LIMIT, DraftTicket, Segment
from hotline.speech.text.masking import MaskKind
from hotline.speech.text.numbers import NumberKind
from hotline.speech.text.pipeline import TextPipeline
from hotline.speech.text.urgency import Transfer, UrgencyKind
from hotline.speech.text.yamlcheck import TextRulesError

C, L = Speaker.CALLER, Speaker.LAWYER


@pytest.fixture(scope="module")
def pipeline() -> TextPipeline:
    return TextPipeline.from_files()


# --- process ----------------------------------------------------------------------------

def test_process_runs_join_lexicon_numbers_masking_in_order(pipeline: TextPipeline) -> None:
    done = pipeline.process("老细 欠 我 三千五百 块 我 电话 幺 三 八 零 零 一 三 八 零 零 零")
    assert done.text == "老板欠我3500元我电话138****8000"
    assert done.original_masked == "老细欠我三千五百块我电话138****8000"
    assert [(r.source, r.target) for r in done.replacements] == [("老细", "老板")]
    assert [(n.kind, n.text) for n in done.numbers] == [(NumberKind.AMOUNT, "3500元")]
    assert [m.kind for m in done.masked] == [MaskKind.MOBILE]


def test_every_position_indexes_the_final_text(pipeline: TextPipeline) -> None:
    done = pipeline.process("佢 话 身份证 幺 幺 零 幺 零 五 幺 九 四 九 幺 二 三 幺 零 零 二 叉 "
                            "二零二四年三月五号 冇 畀 人工 两万 块")
    assert "110105********002X" in done.text
    for r in done.replacements:
        assert done.text[r.start:r.end] == r.target
    for n in done.numbers:
        assert done.text[n.start:n.end] == n.text
    for m in done.masked:
        assert "***" in done.text[m.start:m.end]
    assert [n.text for n in done.numbers] == ["2024年3月5日", "20000元"]


def test_masked_digit_strings_are_not_listed_as_numbers(pipeline: TextPipeline) -> None:
    done = pipeline.process("我 电话 一 三 八 零 零 一 三 八 零 零 零")
    assert done.numbers == ()
    assert "13800138000" not in json.dumps(done.to_dict(), ensure_ascii=False)


def test_dialect_filter(pipeline: TextPipeline) -> None:
    assert pipeline.process("佢 晓得", dialects={Language.HUBEI}).text == "佢知道"


def test_processing_stored_text_again_changes_nothing(pipeline: TextPipeline) -> None:
    once = pipeline.process("我 在 工地 干 了 三 个 月 老板 欠 我 三千五百 块 钱 "
                            "电话 幺 三 八 零 零 一 三 八 零 零 零 二零二四年三月五号")
    assert pipeline.process(once.text).text == once.text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_pipeline_never_raises_on_arbitrary_text(text: str) -> None:
    TextPipeline_ = _PIPELINE
    done = TextPipeline_.process(text)
    assert isinstance(done.text, str) and isinstance(done.original_masked, str)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["我", "老细", "欠", "三千五百", "块", "幺", "三", "八", "零", "一",
                                 "两", "万", "年", "月", "号", "克", "人工", " ", "138", "0013",
                                 "8000", "X", "叉", "个", "岁", "百分之"]), max_size=30))
def test_pipeline_never_raises_and_masks_on_word_soup(words: list[str]) -> None:
    done = _PIPELINE.process(" ".join(words))
    for m in done.masked:
        assert "***" in done.text[m.start:m.end]


_PIPELINE = TextPipeline.from_files()

GLUE = st.sampled_from(["我", "电话", "是", "身份证", "三个月", "两万", "块钱", "老细", "克", "十",
                        "百", "X", "abc", "3500", "元", "二零二四年", "一定", "第一", "月", "号"])
SPOKEN = dict(zip("0123456789X", "零幺二三四五六七八九叉", strict=True))


@settings(max_examples=300, deadline=None)
@given(st.lists(GLUE, max_size=5).map(" ".join),
       st.builds(lambda p, rest: f"1{p}{rest:09d}", st.sampled_from("3456789"),
                 st.integers(0, 999_999_999)),
       st.lists(GLUE, max_size=5).map(" ".join), st.sampled_from(["digits", "words", "spaced"]))
def test_a_mobile_never_survives_the_pipeline(before: str, number: str, after: str,
                                              how: str) -> None:
    said = {"digits": number, "words": "".join(SPOKEN[c] for c in number),
            "spaced": " ".join(SPOKEN[c] for c in number)}[how]
    done = _PIPELINE.process(f"{before} {said} {after}")
    for text in (done.text, done.original_masked):
        assert number[:7] not in text.replace(" ", "")


# --- draft ------------------------------------------------------------------------------

CALL = [
    Segment(L, 0.0, 2.5, "您好 十二三四八 公共 法律 服务 热线 请 讲"),
    Segment(C, 2.5, 4.0, "喂 你好"),
    Segment(C, 4.0, 11.0, "我 在 工地 干 了 三 个 月 包工头 欠 我 三千五百 块 钱 一直 不 给"),
    Segment(L, 11.0, 14.0, "您 是 说 拖欠 工资 是吧 有 没有 签 合同"),
    Segment(C, 14.0, 22.0, "没有 签 从 二零二四年三月五号 干 到 现在 老板 电话 也 不 接"),
    Segment(C, 22.0, 27.0, "我 电话 是 幺 三 八 零 零 一 三 八 零 零 零"),
    Segment(L, 27.0, 33.0, "您 可以 申请 法律 援助 如果 他 再 打 您 就 报警"),
    Segment(C, 33.0, 34.0, "好的 谢谢"),
]


def test_draft_of_a_wage_arrears_call(pipeline: TextPipeline) -> None:
    draft = pipeline.draft(CALL)
    assert (draft.category, draft.subcategory) == (Category.LABOR, "欠薪")
    assert draft.amounts == ("3500元",)
    assert draft.dates == ("2024年3月5日",)
    assert draft.durations == ("3个月",)
    assert draft.parties == ("包工头", "老板")
    assert draft.urgency == () and draft.transfers == ()  # the lawyer's 打您 is advice
    assert draft.green_reasons == (GreenReason.MIGRANT_WAGES,)
    assert draft.masked_numbers == 1
    assert draft.summary.startswith("我在工地干了3个月包工头欠我3500元一直不给，")
    assert "2024年3月5日" in draft.summary and "喂你好" not in draft.summary
    assert "您" not in draft.summary  # only the caller's words


def test_draft_is_json_ready_and_never_holds_a_full_number(pipeline: TextPipeline) -> None:
    body = pipeline.draft(CALL).to_dict()
    dumped = json.dumps(body, ensure_ascii=False)
    assert "13800138000" not in dumped and "8000" not in dumped  # not even masked
    assert body["category"] == "labor" and body["category_label"] == "劳动争议"
    assert body["suggestions"][0]["evidence"]
    assert set(body) == {"category", "category_label", "subcategory", "suggestions", "summary",
                         "amounts", "dates", "durations", "parties", "urgency", "transfers",
                         "green_reasons", "masked_numbers"}


def test_draft_flags_urgency_from_the_caller_only(pipeline: TextPipeline) -> None:
    draft = pipeline.draft([
        Segment(C, 0, 5, "我 老公 又 打 我 了 我 不想 活 了"),
        Segment(L, 5, 8, "您 先 别 想不开 他 打 您 了 吗"),
    ])
    assert [f.kind for f in draft.urgency] == [UrgencyKind.SELF_HARM,
                                               UrgencyKind.DOMESTIC_VIOLENCE]
    assert draft.transfers == (Transfer.AMBULANCE, Transfer.POLICE)
    assert draft.category is Category.MARRIAGE_FAMILY and draft.subcategory == "家庭暴力"
    assert draft.summary == "我老公又打我了我不想活了。"


def test_elderly_caller_hint(pipeline: TextPipeline) -> None:
    draft = pipeline.draft([Segment(C, 0, 5, "我 今年 七十五 岁 了 儿子 不 给 赡养费")])
    assert GreenReason.ELDERLY in draft.green_reasons
    assert draft.subcategory == "赡养"


def test_summary_keeps_key_sentences_within_the_limit(pipeline: TextPipeline) -> None:
    filler = [Segment(C, float(i), i + 0.5, "嗯 那个 就是 说 我 也 不 太 清楚 怎么 讲")
              for i in range(40)]
    key = Segment(C, 100.0, 105.0, "老板 欠 我 两万 块 钱 工资 三 个 月 了")
    chatter = [Segment(C, 200.0 + i, 200.5 + i,
                       f"老板 说 第 {i} 次 下 个 月 再 给 工资 我 也 没 办法 "
                       "就 一直 等 一直 等 等 到 现在 还是 没有 拿到 钱") for i in range(20)]
    draft = pipeline.draft([*filler, key, *chatter])
    assert len(draft.summary) <= SUMMARY_LIMIT
    assert draft.summary.startswith("老板欠我20000元工资3个月了")
    assert "不太清楚" not in draft.summary


def test_summary_falls_back_to_the_first_words(pipeline: TextPipeline) -> None:
    draft = pipeline.draft([Segment(C, 0, 1, "喂"), Segment(C, 1, 2, "请问 是 这里 吗")])
    assert draft.category is None and draft.suggestions == ()
    assert draft.summary == "喂，请问是这里吗。"


def test_empty_call_and_unknown_speakers(pipeline: TextPipeline) -> None:
    @dataclass(frozen=True)
    class Stored:  # what the ledger returns: speaker as a plain string
        speaker: str
        start_s: float
        end_s: float
        text: str

    empty = pipeline.draft([])
    assert empty == DraftTicket(None, None, (), "", (), (), (), (), (), (), (), 0)
    draft = pipeline.draft([Stored("system", 0, 1, "本次通话将被录音"),
                            Stored("caller", 1, 3, "我想离婚")])
    assert draft.category is Category.MARRIAGE_FAMILY and draft.summary == "我想离婚。"


# --- configuration ----------------------------------------------------------------------

def test_from_files_reports_problems_of_both_files(tmp_path: Path) -> None:
    lexicon = tmp_path / "lexicon.yaml"
    lexicon.write_text("entries:\n  - {dialect: hubei, from: 么样}\n", encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text("classify:\n  threshold: 2\n  categories:\n    laber: {phrases: {欠薪: 3}}\n"
                     "urgency:\n  flags: {}\n", encoding="utf-8")
    with pytest.raises(TextRulesError) as info:
        TextPipeline.from_files(lexicon, rules)
    report = str(info.value)
    assert f"{lexicon}:2:5: entries.0: 缺少必填项 'to'" in report
    assert f"{rules}:4:5: classify.categories.laber:" in report
    assert "是否想写 'labor'" in report


def test_packaged_defaults_are_found_next_to_the_module() -> None:
    import hotline.speech.text.pipeline as module

    folder = Path(module.__file__).parent
    assert (folder / "lexicon.yaml").is_file() and (folder / "rules.yaml").is_file()
    assert TextPipeline.from_files(None, None).process("冇得").text == "没有"
