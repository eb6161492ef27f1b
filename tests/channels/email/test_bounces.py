"""Bounces (RFC 3464 DSN) → FAILED status for our original message + email.bounce event."""

from __future__ import annotations

from channels.email.bounces import parse_bounce
from channels.email.inbound import mail_to_inbound
from channels.email.mime_parse import parse_email
from conversations.types import InboundEvent, MessageStatus, StatusUpdate

from .conftest import fixture_bytes


def test_postfix_dsn_names_the_original_message_and_recipient() -> None:
    bounce = parse_bounce(parse_email(fixture_bytes("dsn_postfix_user_unknown.eml")))

    assert bounce is not None
    assert bounce.original_message_id == "<crmbot.5f1d3a2b4c6e8f0a1b2c3d4e5f607182@example.com>"
    [rcpt] = bounce.recipients
    assert (rcpt.address, rcpt.status, rcpt.action, rcpt.permanent) == (
        "nobody@example.cn",
        "5.1.1",
        "failed",
        True,
    )
    assert "User unknown" in bounce.summary


def test_dsn_becomes_a_failed_status_and_a_bounce_event() -> None:
    status, event = mail_to_inbound(
        fixture_bytes("dsn_postfix_user_unknown.eml"), own_addresses=frozenset(), media=None
    )

    assert isinstance(status, StatusUpdate) and status.status == MessageStatus.FAILED
    assert status.provider_message_id == "<crmbot.5f1d3a2b4c6e8f0a1b2c3d4e5f607182@example.com>"
    assert isinstance(event, InboundEvent) and event.event_type == "email.bounce"
    assert event.payload["permanent"] == ["nobody@example.cn"]


def test_delayed_dsn_is_not_a_failure() -> None:
    raw = fixture_bytes("dsn_postfix_user_unknown.eml").replace(
        b"Action: failed", b"Action: delayed"
    )

    assert parse_bounce(parse_email(raw)) is None


def test_ordinary_mail_is_not_a_bounce() -> None:
    assert parse_bounce(parse_email(fixture_bytes("big5_body.eml"))) is None
