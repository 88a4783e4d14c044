"""Masking personal numbers: true and false positives, spoken digits, and the log filter."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.logs import mask_text
from hotline.speech.text.masking import (
    MaskKind,
    classify_number,
    id_check_char,
    is_resident_id,
    luhn_ok,
    mask_numbers,
)

ID_X = "11010519491231002X"  # the GB 11643 sample number: check character X
ID_BAD_CHECK = "110105194912310021"  # same digits, wrong check digit (and not Luhn-valid)


def masked(text: str) -> str:
    return mask_numbers(text)[0]


def kinds(text: str) -> list[MaskKind]:
    return [m.kind for m in mask_numbers(text)[1]]


def test_valid_id_with_x_check_character_is_masked() -> None:
    assert is_resident_id(ID_X) and is_resident_id(ID_X.lower())
    text, spans = mask_numbers(f"我身份证号是{ID_X}对吧")
    assert text == "我身份证号是110105********002X对吧"
    assert [(s.kind, text[s.start:s.end]) for s in spans] == [
        (MaskKind.RESIDENT_ID, "110105********002X")]


def test_same_digits_with_a_bad_check_digit_are_not_an_id() -> None:
    assert not is_resident_id(ID_BAD_CHECK) and not luhn_ok(ID_BAD_CHECK)
    assert masked(f"案号{ID_BAD_CHECK}") == f"案号{ID_BAD_CHECK}"


def test_invalid_birth_date_is_not_an_id() -> None:
    first17 = "11010519491331002"  # month 13
    number = first17 + id_check_char(first17)
    assert not is_resident_id(number) and classify_number(number) is None
    feb30 = "42010219900230123"
    assert not is_resident_id(feb30 + id_check_char(feb30))


def test_spoken_id_with_cha_for_x() -> None:
    spoken = "幺幺零幺零五幺九四九幺二三幺零零二叉"
    assert masked(f"身份证{spoken}") == "身份证110105********002X"


def test_mobile_numbers_written_and_spoken() -> None:
    assert masked("电话13800138000") == "电话138****8000"
    assert masked("138 0013 8000") == "138****8000"
    assert masked("+86 138 0013 8000") == "+86138****8000"
    assert masked("我电话是幺三八零零一三八零零零") == "我电话是138****8000"
    assert masked("一 三 八 零 零 一 三 八 零 零 零") == "138****8000"
    # The recogniser glued the next word's 一 to the number: still masked.
    assert masked("号码一三八零零一三八零零零一定保密") == "号码138****8000一定保密"


def test_numbers_glued_to_neighbours_by_the_recogniser() -> None:
    assert masked("是一一三八零零一三八零零零一定") == "是一138****8000一定"
    assert masked("13800138000两万") == "138****8000两万"  # the 两 is 两万's
    assert masked("0一三八零零一三八零零零0") == "0138****80000"


def test_not_mobiles() -> None:
    assert masked("12012345678") == "12012345678"  # 12x is no mobile prefix
    assert masked("1380013800") == "1380013800"  # 10 digits


def test_landlines() -> None:
    text, spans = mask_numbers("座机027-8765 4321找王律师")
    assert text == "座机027****4321找王律师"
    assert [s.kind for s in spans] == [MaskKind.LANDLINE]
    assert masked("02787654321") == "027****4321"
    assert masked("0710-3234567") == "0710***4567"
    assert masked("010 6123 4567") == "010****4567"
    assert masked("零二七八七六五四三二一") == "027****4321"
    assert masked("0271234567") == "0271234567"  # local part may not start with 1


def test_bank_cards_need_luhn() -> None:
    assert luhn_ok("6222021234567890128") and not luhn_ok("6222021234567890127")
    assert masked("卡号6222021234567890128") == "卡号****0128"
    assert masked("卡号6222021234567890127") == "卡号6222021234567890127"
    assert masked("4111 1111 1111 1111") == "****1111"
    assert kinds("6212345678901232") == [MaskKind.BANK_CARD]


@pytest.mark.parametrize("text", [
    "老板欠我3500元", "2024年3月5日", "20240305", "打12348咨询", "12348 12345 110 120",
    "（2024）鄂0102民初1234号", "订单号2024030512", "我工资每月4500元干了36个月",
    "一万二千三百四十五", "百分之七十", "call 9f3c1234567890ab",
])
def test_amounts_dates_and_service_numbers_are_untouched(text: str) -> None:
    assert mask_numbers(text) == (text, ())


def test_several_numbers_and_positions() -> None:
    source = f"电话13800138000，身份证{ID_X}，卡6222021234567890128。"
    text, spans = mask_numbers(source)
    assert [s.kind for s in spans] == [MaskKind.MOBILE, MaskKind.RESIDENT_ID,
                                       MaskKind.BANK_CARD]
    for s in spans:
        assert "*" in text[s.start:s.end]
        assert source[s.source_start:s.source_end].replace(" ", "") != text[s.start:s.end]


def test_digits_glued_to_letters_are_part_of_a_token() -> None:
    assert masked("id=a13800138000") == "id=a13800138000"
    assert masked("13800138000abc") == "13800138000abc"
    assert masked("ID一三八零零一三八零零零") == "ID138****8000"  # spoken digits: no token


# --- properties -------------------------------------------------------------------------

WORDS = st.sampled_from(["我", "的", "电话", "是", "身份证", "号码", "，", "。", " ", "老板",
                         "欠", "元", "在", "工地"])
FILLER = st.lists(WORDS, max_size=5).map("".join)


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    area = draw(st.integers(110000, 659999))
    born = draw(st.dates(date(1900, 1, 1), date(2099, 12, 31)))
    seq = draw(st.integers(0, 999))
    first17 = f"{area}{born:%Y%m%d}{seq:03d}"
    return first17 + id_check_char(first17)


MOBILES = st.builds(lambda p, rest: f"1{p}{rest:09d}", st.sampled_from("3456789"),
                    st.integers(0, 999_999_999))
SPOKEN = dict(zip("0123456789X", "零幺二三四五六七八九叉", strict=True))


@settings(max_examples=300, deadline=None)
@given(FILLER, st.one_of(resident_ids(), MOBILES), FILLER, st.booleans())
def test_valid_ids_and_mobiles_never_survive(before: str, number: str, after: str,
                                             spoken: bool) -> None:
    said = "".join(SPOKEN[c] for c in number) if spoken else number
    text, spans = mask_numbers(before + said + after)
    assert number not in text and said not in text
    assert len(spans) == 1
    assert spans[0].kind in (MaskKind.RESIDENT_ID, MaskKind.MOBILE)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("0123456789 -Xx叉零幺一二两三四五六七八九元号年")),
               max_size=60))
def test_never_raises_and_spans_point_at_masks(text: str) -> None:
    out, spans = mask_numbers(text)
    for s in spans:
        assert "***" in out[s.start:s.end]  # 0710***4567 hides 3


def test_ids_of_every_birth_day_of_a_leap_year_validate() -> None:
    day = date(2000, 1, 1)
    while day.year == 2000:
        first17 = f"420102{day:%Y%m%d}123"
        assert is_resident_id(first17 + id_check_char(first17))
        day += timedelta(days=1)


# --- the log filter (hotline.logs.mask_text) --------------------------------------------

def test_logs_still_mask_caller_numbers_in_sip_uris() -> None:
    assert mask_text("INVITE sip:13800138000@10.0.0.1 from 02788886666") == (
        "INVITE sip:138****8000@10.0.0.1 from 027****6666")
    assert mask_text("caller 10000000001 rang") == "caller 100****0001 rang"  # no mobile, masked


def test_logs_leave_hex_ids_and_uuids_alone() -> None:
    for line in ("call 9f3c1234567890ab done", "call-id 1234567890abcdef",
                 "ticket 550e8400-e29b-41d4-a716-446655440000",
                 "uuid 12345678-1234-1234-1234-123456789012"):
        assert mask_text(line) == line


def test_logs_mask_ids_landlines_and_spoken_numbers() -> None:
    assert mask_text(f"id {ID_X}") == "id 110105********002X"
    assert mask_text("id 12345678901234567X") == "id 123**********4567X"  # no ID: generic
    assert mask_text("座机 027-8765 4321") == "座机 027****4321"
    assert mask_text("转写: 幺三八零零一三八零零零") == "转写: 138****8000"
    assert mask_text("12:30:05 ticket 2024-0001") == "12:30:05 ticket 2024-0001"
