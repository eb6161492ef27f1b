"""Charset handling for Chinese mail (research note §3d; issue 12)."""

from __future__ import annotations

import pytest

from channels.email.charsets import codec_for, decode_bytes, decode_header_value
from channels.email.mime_parse import parse_email

from .conftest import fixture_bytes


@pytest.mark.parametrize(
    "label", ["gb2312", "GBK", "x-gbk", "cp936", "euc-cn", "GB_2312-80", '"gb2312"']
)
def test_gb_family_labels_decode_as_gb18030(label: str) -> None:
    assert codec_for(label) == "gb18030"


def test_gb2312_label_with_gbk_chars() -> None:
    mail = parse_email(fixture_bytes("gb2312_label_gbk_chars.eml"))

    assert mail.subject == "朱镕基询价"
    assert mail.from_name == "陶喆"
    assert "朱镕基公司的陶喆" in mail.text


def test_gb2312_encoded_word_with_gbk_only_char() -> None:
    word = "=?GB2312?B?" + __import__("base64").b64encode("朱镕基".encode("gbk")).decode() + "?="

    assert decode_header_value(word) == "朱镕基"


def test_big5_body_decodes() -> None:
    mail = parse_email(fixture_bytes("big5_body.eml"))

    assert mail.subject == "詢問繁體說明書"
    assert "繁體中文說明書" in mail.text


def test_raw_8bit_gbk_subject_is_recovered() -> None:
    assert parse_email(fixture_bytes("raw_8bit_gbk_header.eml")).subject == "询价单"


def test_wrong_declared_charset_falls_back_to_what_decodes() -> None:
    text, codec = decode_bytes("你好，世界".encode(), "iso-2022-jp")

    assert text == "你好，世界"
    assert codec == "utf-8"


def test_gbk_bytes_declared_as_utf8_are_recovered() -> None:
    text, codec = decode_bytes("请报价，谢谢".encode("gbk"), "utf-8")

    assert text == "请报价，谢谢"
    assert codec == "gb18030"


def test_unknown_charset_label_does_not_raise() -> None:
    text, _ = decode_bytes(b"hello", "x-no-such-charset")

    assert text == "hello"


def test_adjacent_encoded_words_join_without_space() -> None:
    value = "=?UTF-8?B?5oql5Lu3?= =?UTF-8?B?5Y2V?="

    assert decode_header_value(value) == "报价单"
