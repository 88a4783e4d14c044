"""Urgency flags: true positives with the right transfer, and the false alarms we avoid."""

from __future__ import annotations

import pytest

from hotline.speech.text.phrases import Negation
from hotline.speech.text.pipeline import TextPipeline
from hotline.speech.text.urgency import (
    Pair,
    Transfer,
    UrgencyDetector,
    UrgencyKind,
    UrgencyRule,
)


@pytest.fixture(scope="module")
def pipeline() -> TextPipeline:
    return TextPipeline.from_files()


def flags(pipeline: TextPipeline, spoken: str) -> dict[UrgencyKind, list[str]]:
    text = pipeline.process(spoken).text
    return {f.kind: [e.phrase for e in f.evidence] for f in pipeline.urgency(text)}


@pytest.mark.parametrize(("spoken", "kind"), [
    ("我 真的 不想 活 了", UrgencyKind.SELF_HARM),
    ("我 想 喝 农药", UrgencyKind.SELF_HARM),
    ("工资 要 不 回来 我 就 从 这里 跳楼", UrgencyKind.SELF_HARM),
    ("活不下去 了 死 了 算 了", UrgencyKind.SELF_HARM),
    ("他 正在 打 我 快 来", UrgencyKind.VIOLENCE),
    ("他们 拿 刀 在 门口", UrgencyKind.VIOLENCE),
    ("别 打 了 救命", UrgencyKind.VIOLENCE),
    ("他 说 要 杀 了 我", UrgencyKind.THREAT),
    ("催收 的 威胁 我 说 要 泼 硫酸", UrgencyKind.THREAT),
    ("我 老公 又 打 我 了", UrgencyKind.DOMESTIC_VIOLENCE),
    ("我 老倌 喝 了 酒 就 动手", UrgencyKind.DOMESTIC_VIOLENCE),
    ("我 一直 被 家暴", UrgencyKind.DOMESTIC_VIOLENCE),
    ("孩子 不见 了 两 个 小时 了", UrgencyKind.CHILD_DANGER),
    ("我 儿子 昨天 在 学校 被 打 了", UrgencyKind.CHILD_DANGER),
    ("他 继父 虐待 孩子", UrgencyKind.CHILD_DANGER),
    ("娃儿 遭 打 了", UrgencyKind.CHILD_DANGER),
    ("人 昏迷 了 流 了 很 多 血", UrgencyKind.MEDICAL),
])
def test_true_positives(pipeline: TextPipeline, spoken: str, kind: UrgencyKind) -> None:
    assert kind in flags(pipeline, spoken)


@pytest.mark.parametrize("spoken", [
    "我 想 打 官司",
    "我 给 他 打 电话 他 不 接",
    "他 打 我 电话 骂 我",
    "我 在 外面 打工 三 年",
    "我 想 打听 一下 离婚 的 事",
    "他 没有 打 我 就是 吵 架",
    "他 从来 没 打 过 我",
    "我 老公 没有 打 我",
    "我 不 想 死 我 想 要 回 工资",
    "笑 死 了",
    "他 打击 报复 我",
    "我 老公 说 要 打 官司",
    "打 欠条 有用 吗",
    "孩子 的 抚养费 他 不 给",
    "老板 说 一定 会 打款",
    "老板 威胁 说 不 给 工资",  # a threat flag, but never violence
])
def test_no_violence_or_self_harm_in_ordinary_talk(pipeline: TextPipeline, spoken: str) -> None:
    raised = flags(pipeline, spoken)
    assert not raised.keys() & {UrgencyKind.VIOLENCE, UrgencyKind.SELF_HARM,
                                UrgencyKind.DOMESTIC_VIOLENCE, UrgencyKind.CHILD_DANGER}


def test_self_harm_suggests_ambulance_and_police(pipeline: TextPipeline) -> None:
    (flag,) = pipeline.urgency("我不想活了")
    assert flag.kind is UrgencyKind.SELF_HARM
    assert flag.transfers == (Transfer.AMBULANCE, Transfer.POLICE)
    assert [t.value for t in flag.transfers] == ["120", "110"]


def test_specific_flag_hides_the_general_one_on_the_same_words(pipeline: TextPipeline) -> None:
    raised = flags(pipeline, "老公 打 我")
    assert raised == {UrgencyKind.DOMESTIC_VIOLENCE: ["老公打我"]}
    raised = flags(pipeline, "孩子 被 打 了")
    assert raised == {UrgencyKind.CHILD_DANGER: ["孩子被打"]}


def test_flags_come_most_serious_first_with_evidence(pipeline: TextPipeline) -> None:
    text = "他拿刀要杀了我我不想活了"
    raised = pipeline.urgency(text)
    assert [f.kind for f in raised] == [UrgencyKind.SELF_HARM, UrgencyKind.VIOLENCE,
                                       UrgencyKind.THREAT]
    for f in raised:
        for e in f.evidence:
            assert text[e.start:e.end] == e.phrase
    assert raised[0].to_dict() == {"kind": "self_harm", "transfers": ["120", "110"],
                                   "evidence": [{"phrase": "不想活了", "start": 8, "end": 12,
                                                 "weight": 1.0, "part": 0}]}


def test_detect_parts_names_the_segment() -> None:
    detector = UrgencyDetector([UrgencyRule(UrgencyKind.VIOLENCE, (Transfer.POLICE,), ("打我",))])
    (flag,) = detector.detect_parts(["你好", "他打我"])
    assert flag.evidence[0].part == 1


def test_negation_gap_and_pairs() -> None:
    detector = UrgencyDetector(
        [UrgencyRule(UrgencyKind.DOMESTIC_VIOLENCE, (Transfer.POLICE,), (),
                     pairs=(Pair(("老公",), ("打我",), within=2),))],
        negation=Negation(("没有",), ("再",)))
    assert detector.detect("老公又打我")
    assert not detector.detect("老公没有再打我")
    assert not detector.detect("老公在外面喝酒打我")  # too far apart
