"""Building our mail: threading headers, deterministic Message-ID, loop and list headers."""

from __future__ import annotations

import email
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from channels.email.config_check import mailbox_config
from channels.email.outbound import InvalidOutbound, build_message
from channels.email.thread_headers import base_subject, reply_headers
from channels.email.unsubscribe import read_token
from channels.media import MediaStore
from conversations.types import AccountRef, MessageKind, Outbound, Purpose

KEY = bytes.fromhex("ab" * 32)
ACCOUNT = AccountRef(
    id=7,
    kind="email",
    name="sales",
    config={
        "address": "sales@example.com",
        "display_name": "销售部",
        "imap_host": "imap.example.com",
        "smtp_host": "smtp.example.com",
    },
    secrets={"password": "app-password"},
)
CFG = mailbox_config(ACCOUNT, "https://crm.example.com")


def outbound(**overrides: Any) -> Outbound:
    values: dict[str, Any] = {
        "key": "k1",
        "account": ACCOUNT,
        "recipient": "buyer@customer.test",
        "kind": MessageKind.TEXT,
        "text": "您好",
        "purpose": Purpose.REPLY,
    }
    values.update(overrides)
    return Outbound(**values)


def built(out: Outbound, media: MediaStore | None = None) -> email.message.EmailMessage:
    msg = build_message(out, CFG, media=media, unsubscribe_key=KEY)
    parsed = email.message_from_bytes(bytes(msg), policy=default_policy)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


THREAD = {
    "provider_message_id": "<q2@customer.test>",
    "thread": {
        "message_id": "<q2@customer.test>",
        "references": ["<a1@example.com>", "<q1@customer.test>"],
        "in_reply_to": "<q1@customer.test>",
        "subject": "回复：报价单",
    },
}


def test_reply_threads_under_the_customers_mail() -> None:
    msg = built(outbound(context={"reply_to": THREAD}))

    assert msg["In-Reply-To"] == "<q2@customer.test>"
    assert msg["References"].split() == [
        "<a1@example.com>",
        "<q1@customer.test>",
        "<q2@customer.test>",
    ]
    assert msg["Subject"] == "Re: 报价单"


def test_retry_of_the_same_key_reuses_the_message_id() -> None:
    assert built(outbound(attempt=1))["Message-ID"] == built(outbound(attempt=2))["Message-ID"]
    assert built(outbound(key="k1"))["Message-ID"] != built(outbound(key="k2"))["Message-ID"]


def test_header_injection_in_subject_is_neutralised() -> None:
    evil = {
        "provider_message_id": None,
        "thread": {"message_id": "<q@c.test>", "subject": "hi\r\nBcc: victim@evil.test"},
    }

    msg = built(outbound(context={"reply_to": evil}))

    assert msg["Bcc"] is None
    assert msg["Subject"] == "Re: hi Bcc: victim@evil.test"


def test_header_injection_in_explicit_subject_is_neutralised() -> None:
    msg = built(outbound(payload={"subject": "报价\nX-Evil: 1"}))

    assert msg["X-Evil"] is None


def test_recipient_with_line_break_is_refused() -> None:
    with pytest.raises(InvalidOutbound):
        build_message(outbound(recipient="a@b.test\r\nBcc: c@d.test"), CFG)


def test_body_and_subject_are_utf8() -> None:
    raw = bytes(build_message(outbound(payload={"subject": "询价"}), CFG))

    assert b"=?utf-8?" in raw.lower()
    assert b"gb2312" not in raw.lower() and b"eucgb2312" not in raw.lower()
    assert email.message_from_bytes(raw).get_content_charset() == "utf-8"


@pytest.mark.parametrize("purpose", [Purpose.AUTO_REPLY, Purpose.NOTIFICATION])
def test_automatic_mail_says_auto_replied(purpose: Purpose) -> None:
    msg = built(outbound(purpose=purpose))

    assert msg["Auto-Submitted"] == "auto-replied"


def test_a_salespersons_reply_is_not_auto_submitted() -> None:
    assert built(outbound())["Auto-Submitted"] is None


def test_marketing_mail_carries_one_click_unsubscribe() -> None:
    msg = built(outbound(purpose=Purpose.MARKETING))

    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    links = [part.strip().strip("<>") for part in msg["List-Unsubscribe"].split(",")]
    https = next(
        link for link in links if link.startswith("https://crm.example.com/email/unsubscribe/")
    )
    assert any(link.startswith("mailto:sales@example.com?subject=unsubscribe") for link in links)
    found = read_token(KEY, https.rsplit("/", 1)[1])
    assert found is not None and (found.account_id, found.address) == (7, "buyer@customer.test")


def test_marketing_without_unsubscribe_key_is_refused() -> None:
    with pytest.raises(InvalidOutbound):
        build_message(outbound(purpose=Purpose.MARKETING), CFG, unsubscribe_key=None)


def test_html_and_attachment_are_added(tmp_path: Path) -> None:
    media = MediaStore(tmp_path)
    stored = media.put(b"%PDF-1.4 quote", filename="报价单.pdf")
    out = outbound(
        payload={
            "html": "<p>您好</p>",
            "attachments": [
                {"sha256": stored.sha256, "filename": "报价单.pdf", "mime": "application/pdf"}
            ],
        }
    )

    msg = built(out, media)

    assert msg.get_body(("html",)) is not None
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "报价单.pdf"
    assert attachment.get_content() == b"%PDF-1.4 quote"


def test_reply_headers_cap_long_reference_chains() -> None:
    refs = [f"<r{i}@c.test>" for i in range(50)]

    headers = reply_headers({"thread": {"message_id": "<last@c.test>", "references": refs}})

    ids = headers["References"].split()
    assert len(ids) == 20 and ids[0] == "<r0@c.test>" and ids[-1] == "<last@c.test>"


@pytest.mark.parametrize(
    "subject", ["Re: 报价", "回复：报价", "答复: 报价", "RE: Fwd: 报价", "转发: 报价"]
)
def test_reply_prefixes_are_stripped(subject: str) -> None:
    assert base_subject(subject) == "报价"


def _thread_from(author: str, answer_to: str) -> dict[str, Any]:
    thread = dict(THREAD["thread"])  # type: ignore[arg-type]
    return {
        "provider_message_id": THREAD["provider_message_id"],
        "thread": {**thread, "from": author, "answer_to": answer_to},
    }


def test_reply_goes_to_the_answered_mails_reply_to_address() -> None:
    msg = built(outbound(context={"reply_to": _thread_from("buyer@customer.test", "desk@c.test")}))

    assert msg["To"] == "desk@c.test"
    assert msg["Cc"] is None


def test_reply_to_a_colleague_keeps_the_customer_in_cc() -> None:
    context = {"reply_to": _thread_from("boss@customer.test", "boss@customer.test")}

    msg = built(outbound(context=context))

    assert msg["To"] == "boss@customer.test"
    assert msg["Cc"] == "buyer@customer.test"


def test_answer_address_that_is_our_own_mailbox_falls_back_to_the_recipient() -> None:
    msg = built(outbound(context={"reply_to": _thread_from("x@c.test", "sales@example.com")}))

    assert msg["To"] == "buyer@customer.test"


def test_marketing_mail_starts_its_own_thread_to_the_cleared_recipient() -> None:
    context = {"reply_to": _thread_from("boss@customer.test", "boss@customer.test")}

    msg = built(outbound(purpose=Purpose.MARKETING, context=context))

    assert msg["In-Reply-To"] is None and msg["References"] is None
    assert msg["To"] == "buyer@customer.test"
    assert msg["Cc"] is None
