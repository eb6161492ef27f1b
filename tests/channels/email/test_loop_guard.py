"""Which inbound mail is automatic (RFC 3834; research note §2c, issue 12)."""

from __future__ import annotations

import pytest

from channels.email.loop_guard import automated_reason, subject_hint
from channels.email.mime_parse import parse_email

from .conftest import fixture_bytes


def mail(headers: str, sender: str = "zhang@customer.test") -> bytes:
    return f"From: {sender}\r\nSubject: hi\r\n{headers}\r\nhello\r\n".encode()


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: auto-replied\r\n",
        "Auto-Submitted: auto-generated\r\n",
        "Precedence: bulk\r\n",
        "Precedence: list\r\n",
        "Precedence: junk\r\n",
        "Precedence: auto_reply\r\n",
        "X-Autoreply: yes\r\n",
        "X-Autorespond: yes\r\n",
        "List-Id: <news.customer.test>\r\n",
        "List-Unsubscribe: <mailto:u@customer.test>\r\n",
        "Return-Path: <>\r\n",
    ],
)
def test_automatic_mail_is_marked(headers: str) -> None:
    assert automated_reason(parse_email(mail(headers))) is not None


@pytest.mark.parametrize(
    "sender",
    ["MAILER-DAEMON@mx.test", "postmaster@mx.test", "noreply@shop.test", "no-reply@shop.test"],
)
def test_automatic_senders_are_marked(sender: str) -> None:
    assert automated_reason(parse_email(mail("", sender=sender))) is not None


def test_auto_submitted_no_is_a_person() -> None:
    assert automated_reason(parse_email(mail("Auto-Submitted: no\r\n"))) is None


def test_a_plain_customer_mail_is_a_person() -> None:
    assert automated_reason(parse_email(fixture_bytes("big5_body.eml"))) is None


def test_exchange_out_of_office_is_marked() -> None:
    assert automated_reason(parse_email(fixture_bytes("out_of_office_exchange.eml"))) is not None


def test_dsn_is_marked() -> None:
    assert automated_reason(parse_email(fixture_bytes("dsn_postfix_user_unknown.eml"))) is not None


def test_mail_from_our_own_address_is_marked() -> None:
    parsed = parse_email(mail("", sender="sales@example.com"))

    assert automated_reason(parsed, frozenset({"sales@example.com"})) == "sent by this mailbox"


def test_out_of_office_subject_is_only_a_hint() -> None:
    assert subject_hint("自动回复: Re: 报价单")
    assert not subject_hint("报价单")
