"""Values that cross the boundary between channel adapters and the unified store.

Adapters produce `Inbound` values and consume `Outbound` values; the pipeline never
sees a provider payload shape. All values are frozen so a parse can be repeated and
compared (the conformance suite checks that parsing is pure).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


class Direction(enum.StrEnum):
    INBOUND = "in"
    OUTBOUND = "out"


class MessageKind(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VOICE = "voice"
    VIDEO = "video"
    FILE = "file"
    LOCATION = "location"
    LINK = "link"
    EMAIL = "email"
    RICH = "rich"  # markdown / textcard / news / miniprogram
    EVENT = "event"  # a system event shown in the timeline (e.g. customer added)
    UNKNOWN = "unknown"  # stored raw and acknowledged, never dropped


class SenderType(enum.StrEnum):
    CUSTOMER = "customer"
    STAFF = "staff"
    BOT = "bot"
    SYSTEM = "system"


class MessageStatus(enum.StrEnum):
    RECEIVED = "received"
    PENDING = "pending"  # queued in the outbox
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SendOutcome(enum.StrEnum):
    SENT = "sent"  # provider accepted it
    RETRY = "retry"  # transient: try again after `retry_after`
    FAILED = "failed"  # permanent: retrying cannot help
    UNKNOWN = "unknown"  # timeout: reconcile before any retry (DESIGN.md invariant 3)


class Purpose(enum.StrEnum):
    """Why a message goes out; decides which rules (quiet hours, opt-out) apply."""

    REPLY = "reply"  # a salesperson's reply: transactional
    AUTO_REPLY = "auto_reply"
    WELCOME = "welcome"
    NOTIFICATION = "notification"  # to staff
    MARKETING = "marketing"  # broadcasts: opt-out, quiet hours, caps apply
    REMINDER = "reminder"


@dataclass(frozen=True)
class InboundMessage:
    """A message a customer (or, on read-only archive paths, a salesperson) wrote."""

    provider_key: str  # dedupe key: provider message id, else a hash of the payload
    external_id: str  # the customer's id on this account (openid, external_userid, E.164, email)
    kind: MessageKind
    text: str
    occurred_at: datetime
    raw: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)
    sender_name: str | None = None
    direction: Direction = Direction.INBOUND
    staff_external_id: str | None = None  # salesperson's id when known (archive, kf servicer)
    automated: bool = False  # auto-submitted mail, bounces: never answered automatically
    contact_hints: Mapping[str, str] = field(default_factory=dict)  # phone/email/unionid
    provider_message_id: str | None = None
    # provider message ids this message answers, nearest first (email In-Reply-To, then
    # References newest to oldest): when one is stored on the account, the message joins
    # that message's conversation whoever sent it (a colleague in Cc, a forwarded thread)
    thread_refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class InboundEvent:
    """A channel or system event (contact added, tag changed, kf wake-up, …)."""

    provider_key: str
    event_type: str  # e.g. "wecom.change_external_contact.add_external_contact"
    occurred_at: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)
    raw: str = ""
    external_id: str | None = None  # the customer it concerns, when there is one
    staff_external_id: str | None = None


@dataclass(frozen=True)
class StatusUpdate:
    """A delivery receipt for something we sent."""

    provider_key: str
    status: MessageStatus
    occurred_at: datetime
    provider_message_id: str | None = None
    outbox_key: str | None = None  # our idempotency key echoed back (OutId, SessionContext)
    error_code: str | None = None
    reason: str | None = None
    raw: str = ""


Inbound = InboundMessage | InboundEvent | StatusUpdate


@dataclass(frozen=True)
class AccountRef:
    """What an adapter needs to know about the account it acts for."""

    id: int
    kind: str
    name: str
    config: Mapping[str, Any]
    secrets: Mapping[str, str]


@dataclass(frozen=True)
class Outbound:
    """One outbound send, idempotent by `key` (the outbox row's idempotency key)."""

    key: str
    account: AccountRef
    recipient: str  # external id on this account
    kind: MessageKind
    text: str
    purpose: Purpose
    payload: Mapping[str, Any] = field(default_factory=dict)  # media refs, template params, …
    context: Mapping[str, Any] = field(default_factory=dict)  # thread headers, kf msgid, …
    attempt: int = 1


@dataclass(frozen=True)
class SendResult:
    outcome: SendOutcome
    provider_message_id: str | None = None
    error_code: str | None = None
    reason: str | None = None  # readable, shown on the message in the console
    retry_after: timedelta | None = None
    status: MessageStatus | None = None  # when the provider already knows (e.g. delivered)

    @classmethod
    def sent(cls, provider_message_id: str | None = None) -> SendResult:
        return cls(SendOutcome.SENT, provider_message_id=provider_message_id)


@dataclass(frozen=True)
class ChannelRules:
    """What an account kind may do; the auto-reply engine and broadcasts read these."""

    auto_reply: bool = True  # may the bot answer customers here
    read_only: bool = False  # no API to answer on this path (message archive)
    reply_window: timedelta | None = None  # e.g. 微信客服: 48 h after the customer's last message
    replies_per_window: int | None = None  # e.g. 微信客服: 5 messages within the window
    max_text_bytes: int | None = None
    marketing: bool = True  # may carry broadcasts
