"""MIME parsing: structure, bad input, and "never raises" (hypothesis)."""

from __future__ import annotations

import base64
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from channels.email.inbound import mail_to_inbound, provider_key_for
from channels.email.mime_parse import parse_email
from conversations.types import InboundMessage, MessageKind

from .conftest import fixture_bytes


def test_html_only_mail_gets_text_and_keeps_html() -> None:
    msg = EmailMessage()
    msg["From"] = "a@customer.test"
    msg["Subject"] = "html"
    msg.set_content("<p>你好<br>请报价</p><script>alert(1)</script>", subtype="html")

    mail = parse_email(bytes(msg))

    assert mail.text == "你好\n请报价"
    assert mail.html is not None and "<p>你好" in mail.html


def test_alternative_prefers_the_plain_part() -> None:
    mail = parse_email(fixture_bytes("foxmail_quote.eml"))

    assert mail.text.startswith("好的，收到，谢谢！")
    assert mail.html is not None and mail.html.startswith("<div>")


def test_gbk_encoded_word_attachment_name_is_decoded() -> None:
    mail = parse_email(fixture_bytes("malformed_mime.eml"))

    assert [a.filename for a in mail.attachments] == ["报价单.pdf"]


def test_rfc2231_attachment_name_is_decoded() -> None:
    msg = EmailMessage()
    msg["From"] = "a@customer.test"
    msg.set_content("see attachment")
    msg.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="合同 2024.pdf")

    mail = parse_email(bytes(msg))

    assert mail.attachments[0].filename == "合同 2024.pdf"


def test_malformed_mime_is_parsed_with_defects() -> None:
    mail = parse_email(fixture_bytes("malformed_mime.eml"))

    assert mail.message_id == "<broken.1@example.cn>"
    assert mail.date is None
    assert any("non-header" in d for d in mail.defects)
    assert any("Boundary" in d for d in mail.defects)


def test_missing_message_id_dedupes_by_raw_hash() -> None:
    raw = fixture_bytes("missing_message_id.eml")

    [first] = mail_to_inbound(raw, own_addresses=frozenset(), media=None)
    [again] = mail_to_inbound(raw, own_addresses=frozenset(), media=None)

    assert first.provider_key.startswith("sha256:")
    assert first.provider_key == again.provider_key


def test_a_thousand_recipients_are_counted_and_listed_in_part() -> None:
    to = ",\r\n ".join(f"user{i}@customer.test" for i in range(1000))
    raw = f"From: boss@customer.test\r\nTo: {to}\r\nSubject: all\r\n\r\nhello all\r\n".encode()

    [item] = mail_to_inbound(raw, own_addresses=frozenset(), media=None)

    assert isinstance(item, InboundMessage)
    assert item.payload["to_count"] == 1000
    assert len(item.payload["to"]) == 50


def test_25_mb_attachment_is_parsed() -> None:
    data = bytes(range(256)) * (25 * 4096)  # 25 MiB
    raw = (
        b"From: a@customer.test\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nbig\r\n"
        b'--b\r\nContent-Type: application/zip; name="big.zip"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(data) + b"--b--\r\n"
    )

    mail = parse_email(raw)

    assert mail.text == "big"
    assert mail.attachments[0].data == data


def test_garbage_is_stored_as_unknown_raw() -> None:
    [item] = mail_to_inbound(b"\x00\xff\xfe garbage", own_addresses=frozenset(), media=None)

    assert isinstance(item, InboundMessage)
    assert item.kind in (MessageKind.UNKNOWN, MessageKind.EMAIL)
    assert item.raw  # kept, visible in the console
    assert "\x00" not in item.raw


def test_no_nul_characters_reach_the_store() -> None:
    raw = b"From: a@customer.test\r\nSubject: x\x00y\r\nMessage-ID: <n@c.test>\r\n\r\nbody\x00text\r\n"

    [item] = mail_to_inbound(raw, own_addresses=frozenset(), media=None)

    assert isinstance(item, InboundMessage)
    assert "\x00" not in item.text and "\x00" not in item.payload["subject"]
    assert "\x00" not in item.payload["body"]


def test_overlong_message_id_still_gives_a_short_key() -> None:
    mail = parse_email(b"Message-ID: <" + b"a" * 300 + b"@x.test>\r\n\r\nhi")

    assert len(provider_key_for(mail)) <= 255


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_parser_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    items = mail_to_inbound(raw, own_addresses=frozenset(), media=None)

    assert items


_HEADERS = st.sampled_from(
    [
        b"From",
        b"To",
        b"Subject",
        b"Content-Type",
        b"Content-Transfer-Encoding",
        b"Message-ID",
        b"References",
        b"Date",
        b"Auto-Submitted",
        b"Content-Disposition",
    ]
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(_HEADERS, st.binary(max_size=80)), max_size=12),
    st.binary(max_size=2000),
)
def test_parser_never_raises_on_mail_shaped_bytes(
    headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    raw = b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n" + body

    items = mail_to_inbound(raw, own_addresses=frozenset(), media=None)

    assert items


def test_a_conversion_bug_still_stores_the_mail_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    import channels.email.inbound as inbound

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug in a later stage")

    monkeypatch.setattr(inbound, "parse_bounce", broken)

    [item] = mail_to_inbound(fixture_bytes("big5_body.eml"), own_addresses=frozenset(), media=None)

    assert isinstance(item, InboundMessage)
    assert item.kind == MessageKind.UNKNOWN and item.automated
    assert item.raw.startswith("From:")
