"""Number normalisation: amounts, dates, durations, digit strings; idioms and odd input survive."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.speech.text.numbers import (
    NumberKind,
    digit_words_to_digits,
    join_words,
    normalise_numbers,
    value_of,
)


def norm(text: str) -> str:
    return normalise_numbers(text)[0]


def test_join_words_removes_spaces_between_chinese_words_only() -> None:
    assert join_words("我 在 工地 干 了 三 个 月 老板 欠 我 三千五百 块 钱") == (
        "我在工地干了三个月老板欠我三千五百块钱")
    assert join_words("我 用 微信 and Alipay 转 的") == "我用微信 and Alipay 转的"
    assert join_words("  幺 三 八  零 零 \t一 三 八 零 零 零 ") == "幺三八零零一三八零零零"
    assert join_words("欠 我 3500 块") == "欠我3500块"
    assert join_words("电话 027-8765 4321") == "电话027-8765 4321"


@pytest.mark.parametrize(("spoken", "written"), [
    ("三千五百块", "3500元"),
    ("三千五块", "3500元"),
    ("两万块钱", "20000元"),
    ("一万二千块", "12000元"),
    ("三点五万元", "35000元"),
    ("五万多块钱", "50000多元"),
    ("一千多块", "1000多元"),
    ("三十来块", "30来元"),
    ("三块五", "3.5元"),
    ("三块五毛钱", "3.5元"),
    ("3500块", "3500元"),
    ("2万块", "20000元"),
    ("老板欠我三千五百块钱", "老板欠我3500元"),
])
def test_amounts(spoken: str, written: str) -> None:
    assert norm(spoken) == written


def test_amount_value_is_in_yuan() -> None:
    _, found = normalise_numbers("欠我两万块钱还有三块五")
    assert [(m.kind, m.value) for m in found] == [(NumberKind.AMOUNT, "20000"),
                                                  (NumberKind.AMOUNT, "3.5")]


@pytest.mark.parametrize(("spoken", "written", "iso"), [
    ("二零二四年三月五号", "2024年3月5日", "2024-03-05"),
    ("三月五号", "3月5日", "--03-05"),
    ("一九九零年五月", "1990年5月", "1990-05"),
    ("十二月三十一日", "12月31日", "--12-31"),
    ("2024年3月5号", "2024年3月5日", "2024-03-05"),
    ("二零二四年二月二十九号", "2024年2月29日", "2024-02-29"),
])
def test_dates(spoken: str, written: str, iso: str) -> None:
    text, found = normalise_numbers(spoken)
    assert text == written
    assert [(m.kind, m.value) for m in found] == [(NumberKind.DATE, iso)]


def test_impossible_days_stay_as_spoken() -> None:
    assert norm("二月三十号") == "二月三十号"
    assert norm("二零二三年二月二十九号") == "2023年2月二十九号"


@pytest.mark.parametrize(("spoken", "written"), [
    ("三个月", "3个月"),
    ("干了两年", "干了2年"),
    ("三个多月", "3个多月"),
    ("两个半月", "2个半月"),
    ("一年半", "1年半"),
    ("十年前", "10年前"),
    ("等了三天", "等了3天"),
    ("我今年七十五岁", "我今年75岁"),
    ("七十多岁", "70多岁"),
    ("半年", "半年"),
])
def test_durations_and_ages(spoken: str, written: str) -> None:
    assert norm(spoken) == written


@pytest.mark.parametrize(("spoken", "digits"), [
    ("幺三八零零一三八零零零", "13800138000"),
    ("一三八零零一三八零零零", "13800138000"),
    ("幺两三四八", "12348"),
    ("一一零", "110"),
    ("幺二零", "120"),
    ("洞幺洞", "010"),
])
def test_digit_strings(spoken: str, digits: str) -> None:
    text, found = normalise_numbers(spoken)
    assert text == digits
    assert [m.kind for m in found] == [NumberKind.DIGITS]


def test_digit_strings_do_not_swallow_neighbours() -> None:
    assert norm("幺三八零零一三八零零零二零二四年换的") == "13800138000 2024年换的"
    assert norm("两万13800138000") == "两万13800138000"
    assert norm("一二三四五千") == "一二三四五千"


def test_big_bare_numbers_and_percentages() -> None:
    assert norm("欠我一万二") == "欠我12000"
    assert norm("对方负百分之七十的责任") == "对方负70%的责任"
    assert norm("一千万") == "10000000"
    assert norm("一万一") == "11000"


@pytest.mark.parametrize("text", [
    "第一次", "一起", "一定", "一下", "统一", "万一", "千万不要", "十万火急", "一天到晚",
    "一年到头", "三三两两", "三四千", "十几万", "五六个人", "十五六岁", "两个人", "二四年",
    "九零年", "一块儿去", "两块砖", "今年元旦", "百分之百", "一五一十", "十分感谢",
])
def test_idioms_approximations_and_measure_words_stay(text: str) -> None:
    assert norm(text) == text


def test_sentence_with_several_numbers_keeps_positions() -> None:
    text, found = normalise_numbers("我在工地干了三个月老板欠我三千五百块钱")
    assert text == "我在工地干了3个月老板欠我3500元"
    for m in found:
        assert text[m.start:m.end] == m.text
        assert "我在工地干了三个月老板欠我三千五百块钱"[m.source_start:m.source_end] == m.source
    assert [m.kind for m in found] == [NumberKind.DURATION, NumberKind.AMOUNT]


def test_value_of_never_raises_and_refuses_what_it_cannot_value() -> None:
    assert value_of("三千五") == 3500
    assert value_of("两万五") == 25000
    assert value_of("三点五万") == 35000
    for bad in ("", "万", "十几", "三四千", "点", "一二三", "四万万", "3.5.5"):
        assert value_of(bad) is None


def test_digit_words_to_digits() -> None:
    assert digit_words_to_digits("幺 三 八 洞 两") == "13802"
    assert digit_words_to_digits("十三") is None
    assert digit_words_to_digits("") is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(
    "零〇一二两三四五六七八九十百千万亿点幺洞年月日号块元钱个多来半岁周天分之百 .-0123456789"
    "我欠了工资老板")), max_size=40))
def test_never_raises_and_positions_hold(text: str) -> None:
    out, found = normalise_numbers(text)
    for m in found:
        assert out[m.start:m.end] == m.text
        assert text[m.source_start:m.source_end] == m.source


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_never_raises_on_any_text(text: str) -> None:
    normalise_numbers(text)
    join_words(text)
