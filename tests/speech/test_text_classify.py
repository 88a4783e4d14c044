"""Category suggestions from realistic caller sentences, and rules.yaml validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from hotline.domain import Category
from hotline.speech.text.classify import CategoryRule, Classifier
from hotline.speech.text.pipeline import TextPipeline
from hotline.speech.text.rules import load_rules, parse_rules
from hotline.speech.text.yamlcheck import TextRulesError, parse_document


@pytest.fixture(scope="module")
def pipeline() -> TextPipeline:
    return TextPipeline.from_files()


CASES = [
    ("我 在 工地 干 了 三 个 月 老板 欠 我 三千五百 块 钱 一直 不 给", Category.LABOR, "欠薪"),
    ("公司 突然 把 我 辞退 了 也 没有 签 劳动 合同", Category.LABOR, "劳动合同"),
    ("我 上班 的 时候 从 架子 上 摔 下来 了 算 不 算 工伤", Category.LABOR, "工伤"),
    ("老细 走佬 冇 出粮", Category.LABOR, "欠薪"),
    ("我 想 跟 老公 离婚 孩子 的 抚养权 怎么 办", Category.MARRIAGE_FAMILY, "离婚"),
    ("订婚 的 时候 给 了 十八万 彩礼 现在 女方 不 嫁 了 能 不能 退", Category.MARRIAGE_FAMILY,
     "彩礼"),
    ("我 父亲 去世 了 没有 遗嘱 遗产 怎么 分", Category.INHERITANCE, "法定继承"),
    ("我 妈 立 了 遗嘱 把 房子 给 了 我 弟弟", Category.INHERITANCE, "遗嘱继承"),
    ("他 借 了 我 两万 块 钱 不 还 我 有 借条", Category.DEBT, "民间借贷"),
    ("我 在 网贷 平台 借 了 钱 现在 逾期 了 天天 被 催收", Category.DEBT, "网贷"),
    ("我 骑 电动车 被 车 撞 了 交警 说 对方 全责", Category.TRAFFIC, "责任认定"),
    ("我 想 申请 法律 援助 需要 什么 材料", Category.LEGAL_AID, "申请材料"),
    ("我 在 网上 买 的 手机 有 质量 问题 商家 不 给 退货", Category.CONSUMER, "网购"),
    ("开发商 延期 交房 一 年 了", Category.PROPERTY, "房屋买卖"),
    ("房东 不 退 押金", Category.CONTRACT, "租赁合同"),
    ("我 被 电信 诈骗 了 五万 块 已经 报警 了", Category.CRIMINAL, None),
    ("我 要 出国 学历 公证 去 哪里 办", Category.NOTARY, None),
    ("伤残 鉴定 去 哪个 司法 鉴定 机构", Category.FORENSIC, None),
    ("跟 邻居 吵 架 了 想 找 人民 调解 委员会 调解", Category.MEDIATION, None),
    ("城管 把 我 的 摊子 没收 了 还 罚款", Category.ADMINISTRATIVE, "行政处罚"),
    ("判决 下来 了 对方 不 给 钱 怎么 申请 强制 执行", Category.PROCEDURE, "执行"),
    ("我 要 投诉 那个 律师 收 了 钱 不 办事", Category.COMPLAINT, None),
    ("我们 是 小微 企业 股东 之间 闹 矛盾 了", Category.SME, None),
    ("在 小区 里 被 狗 咬 了 医药费 谁 出", Category.PERSONAL_INJURY, None),
    ("我 是 想 问 一下 停水 的 事", Category.OTHER, None),
]


@pytest.mark.parametrize(("spoken", "category", "subcategory"), CASES)
def test_realistic_caller_sentences(pipeline: TextPipeline, spoken: str, category: Category,
                                    subcategory: str | None) -> None:
    best = pipeline.classify(pipeline.process(spoken).text)[0]
    assert (best.category, best.subcategory) == (category, subcategory)
    assert best.score >= pipeline.rules.classifier.threshold


def test_every_category_code_has_rules(pipeline: TextPipeline) -> None:
    assert {r.category for r in pipeline.rules.classifier.rules} == set(Category)


def test_evidence_names_the_phrases_and_where(pipeline: TextPipeline) -> None:
    text = pipeline.process("老板 拖欠 工资 半年 了 我 想 去 劳动 仲裁").text
    best = pipeline.classify(text)[0]
    assert best.category is Category.LABOR
    phrases = [e.phrase for e in best.evidence]
    assert "拖欠工资" in phrases and "劳动仲裁" in phrases
    assert "工资" not in phrases  # inside 拖欠工资: counted once
    for e in best.evidence:
        assert text[e.start:e.end] == e.phrase
    assert best.score == sum(e.weight for e in best.evidence)


def test_nothing_convincing_means_no_suggestion(pipeline: TextPipeline) -> None:
    assert pipeline.classify("喂你好请问是十二三四八吗") == ()
    assert pipeline.classify("我想问一下") == ()
    assert pipeline.classify("") == ()


def test_negation_cancels_a_phrase(pipeline: TextPipeline) -> None:
    ranked = pipeline.classify("我不是离婚的事是他借钱不还")
    assert [s.category for s in ranked] == [Category.DEBT]
    assert pipeline.classify("不是因为离婚") == ()


def test_ranked_best_first_and_limited(pipeline: TextPipeline) -> None:
    ranked = pipeline.classify("出了车祸对方全责保险公司不赔我想起诉打官司还要做伤残鉴定")
    assert ranked[0].category is Category.TRAFFIC
    assert [s.score for s in ranked] == sorted((s.score for s in ranked), reverse=True)
    assert len(ranked) <= pipeline.rules.classifier.max_suggestions


def test_lawyer_words_count_at_their_factor_once() -> None:
    clf = Classifier([CategoryRule(Category.LABOR, (("欠薪", 3.0),))], threshold=2.0)
    assert clf.classify_parts([("您是说欠薪吗", 0.5)]) == ()
    both = clf.classify_parts([("老板欠薪", 1.0), ("您是说欠薪吗", 0.5)])
    assert both[0].score == 3.0 and both[0].evidence[0].part == 0


def test_suggestion_to_dict_is_json_ready(pipeline: TextPipeline) -> None:
    best = pipeline.classify("我想离婚")[0]
    assert best.to_dict() == {
        "category": "marriage_family", "label": "婚姻家庭", "subcategory": "离婚",
        "score": 3.0, "evidence": [{"phrase": "离婚", "start": 2, "end": 4, "weight": 3.0,
                                    "part": 0}]}


BROKEN = """\
classify:
  threshold: high
  categories:
    labour:
      phrases: {欠薪: 3}
    labor:
      phrases: {工资: 三}
      subcategories:
        加班: {加班费: 2}
        欠薪: {工资: 2}
    criminal:
      phrases: {诈骗: 3}
      subcategories:
        诈骗: {电信诈骗: 3}
urgency:
  flags:
    self_harm:
      transfers: [119]
      phrases: [自杀]
    panic:
      transfers: [110]
      phrases: [救命]
    violence:
      phrases: [打我]
parties: 老板
"""


def test_broken_rules_list_every_problem_with_file_line_and_key() -> None:
    with pytest.raises(TextRulesError) as info:
        parse_rules(parse_document(BROKEN, "rules.yaml"), None)
    report = str(info.value)
    expected = [
        ("rules.yaml:2:", "classify.threshold", "'high'"),
        ("rules.yaml:4:", "classify.categories.labour", "是否想写 'labor'"),
        ("rules.yaml:7:", "classify.categories.labor.phrases.工资", "'三'"),
        ("rules.yaml:18:", "urgency.flags.self_harm.transfers.0", "'119'"),
        ("rules.yaml:20:", "urgency.flags.panic", "紧急情况类型"),
        ("rules.yaml:24:", "urgency.flags.violence", "缺少必填项 'transfers'"),
        ("rules.yaml:25:", "parties", "应为字符串列表"),
    ]
    for where, key, detail in expected:
        line = next((x for x in report.splitlines() if where in x and key in x), None)
        assert line is not None, (where, key, report)
        assert detail in line
    assert len(info.value.problems) == len(expected)


def test_subcategories_are_checked_against_the_desk_catalogue() -> None:
    with pytest.raises(TextRulesError) as info:
        parse_rules(parse_document(BROKEN.replace("  threshold: high\n", "  threshold: 2\n"),
                                   "rules.yaml"), {"labor": ("欠薪", "工伤"), "criminal": ()})
    report = str(info.value)
    assert "rules.yaml:9:9: classify.categories.labor.subcategories.加班: 子类 的值 '加班' 无效 " \
           "(可用: 欠薪, 工伤)" in report
    assert "criminal.subcategories.诈骗: 子类 的值 '诈骗' 无效 (可用: (该类别没有子类))" in report
    assert "classify.threshold" not in report


def test_a_phrase_twice_in_one_category_is_reported() -> None:
    text = "classify:\n  threshold: 2\n  categories:\n    labor:\n      phrases: {工资: 1}\n" \
           "      subcategories:\n        欠薪: {工资: 2}\nurgency:\n  flags: {}\n"
    with pytest.raises(TextRulesError) as info:
        parse_rules(parse_document(text, "r.yaml"), None)
    assert "r.yaml:7:" in str(info.value) and "短语在类别 labor 中重复" in str(info.value)


def test_missing_sections_and_unknown_top_keys(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("classifier: {}\n", encoding="utf-8")
    with pytest.raises(TextRulesError) as info:
        load_rules(path)
    report = str(info.value)
    assert "缺少必填项 'classify'" in report and "缺少必填项 'urgency'" in report
    assert f"{path}:1:1: classifier: 未知属性 'classifier'" in report


def test_packaged_rules_match_the_builtin_desk_catalogue() -> None:
    rules = load_rules()
    assert rules.parties and rules.urgency.rules
