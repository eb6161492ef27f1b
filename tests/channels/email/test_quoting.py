"""Quoted-reply and signature stripping (research note §3c)."""

from __future__ import annotations

from channels.email.mime_parse import parse_email
from channels.email.quoting import strip_quoted

from .conftest import fixture_bytes


def test_gmail_chinese_wrote_line_is_stripped() -> None:
    body = parse_email(fixture_bytes("gmail_zh_quote.eml")).text

    assert strip_quoted(body) == "请问最快什么时候能到货？"


def test_foxmail_original_message_block_is_stripped() -> None:
    body = parse_email(fixture_bytes("foxmail_quote.eml")).text

    assert strip_quoted(body) == "好的，收到，谢谢！\n我们确认订单，合同稍后寄出。"


def test_outlook_chinese_header_block_is_stripped() -> None:
    body = parse_email(fixture_bytes("gbk_subject_outlook.eml")).text

    shown = strip_quoted(body)

    assert shown.endswith("华南贸易有限公司")
    assert "发件人" not in shown and "报价单" not in shown


def test_outlook_block_without_separator_line_is_stripped() -> None:
    body = "可以。\n\n发件人: 销售部 <sales@example.com>\n发送时间: 2024年5月6日 10:00\n收件人: x\n主题: y\n\n原文"

    assert strip_quoted(body) == "可以。"


def test_english_gmail_reply_is_stripped() -> None:
    body = "Sounds good.\n\nOn Mon, May 6, 2024 at 10:00 AM Sales <sales@example.com> wrote:\n> price?\n"

    assert strip_quoted(body) == "Sounds good."


def test_mobile_signature_is_stripped() -> None:
    assert strip_quoted("收到，明天付款。\n\n发自我的iPhone") == "收到，明天付款。"


def test_rfc3676_signature_is_stripped() -> None:
    assert strip_quoted("OK\n\n-- \n王经理\n电话 123") == "OK"


def test_reply_below_the_quote_keeps_the_whole_body() -> None:
    body = "------------------ 原始邮件 ------------------\n发件人: a\n\n原文"

    assert strip_quoted(body) == body.strip()


def test_trailing_angle_quoted_lines_are_dropped() -> None:
    assert strip_quoted("好的\n\n> 以前的内容\n> 更多") == "好的"
