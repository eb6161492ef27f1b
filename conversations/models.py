"""The unified conversation store: accounts, customers, identities, conversations,
messages, the outbox, channel cursors, staff and the audit log.

Invariants from DESIGN.md live here as unique constraints:
- messages: (account_id, provider_key) unique — inbound dedupe;
- identities: (channel_kind, account_id, external_id) unique;
- outbox_items: idempotency_key unique;
- channel_cursors: (account_id, name) primary key, updated with the page's messages.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Base, UTCDateTime, utcnow

# BIGINT on PostgreSQL; SQLite only auto-increments a plain INTEGER PRIMARY KEY
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class StaffUser(Base):
    """A console user: admin, manager, sales (销售) or marketer."""

    __tablename__ = "staff_users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="sales")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), nullable=True)
    locale: Mapped[str] = mapped_column(String(10), default="zh")
    wecom_userid: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    email: Mapped[str | None] = mapped_column(String(255), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    totp_secret: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChannelAccount(Base):
    """One WeCom corp+app, kf account, archive, SMS gateway account or mailbox."""

    __tablename__ = "channel_accounts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)  # "wecom.app", "sms.aliyun", …
    name: Mapped[str] = mapped_column(String(100))
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets: Mapped[dict[str, Any]] = mapped_column(default=dict)  # encrypted values
    # unguessable path token for callback URLs: /callbacks/<kind>/<callback_token>
    callback_token: Mapped[str] = mapped_column(String(64), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    phone: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)  # E.164
    email: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    wecom_unionid: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id"), nullable=True, index=True
    )  # follow-up salesperson (跟进人)
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id"), nullable=True, index=True
    )
    first_channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Identity(Base):
    """A customer's id on one account; one customer may have many identities."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("channel_kind", "account_id", "external_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    channel_kind: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    external_id: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("account_id", "identity_id"),
        Index("ix_conversations_last_message", "last_message_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"), index=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id"))
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id"), nullable=True, index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | closed
    mode: Mapped[str] = mapped_column(String(16), default="bot")  # bot | human
    mode_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_preview: Mapped[str] = mapped_column(String(200), default="")
    unread_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    customer: Mapped[Customer] = relationship(lazy="raise")
    account: Mapped[ChannelAccount] = relationship(lazy="raise")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("account_id", "provider_key"),
        Index("ix_messages_conversation", "conversation_id", "id"),
        Index("ix_messages_provider_message_id", "account_id", "provider_message_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    direction: Mapped[str] = mapped_column(String(4))  # in | out
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raw: Mapped[str] = mapped_column(Text, default="")
    # inbound dedupe key (NULL for our own outbound until the provider names it)
    provider_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    sender_type: Mapped[str] = mapped_column(String(16))
    sender_staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), nullable=True)
    staff_external_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    purpose: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    automated: Mapped[bool] = mapped_column(Boolean, default=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # set in the same transaction as the handlers' writes; NULL = still to process
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ChannelEvent(Base):
    """A system event from a channel, deduplicated like messages."""

    __tablename__ = "channel_events"
    __table_args__ = (UniqueConstraint("account_id", "provider_key"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    provider_key: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(100), index=True)
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    staff_external_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raw: Mapped[str] = mapped_column(Text, default="")
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class OutboxItem(Base):
    """One outbound send; written in the transaction that decided to send it."""

    __tablename__ = "outbox_items"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id"), nullable=True, index=True
    )
    recipient: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # pending → sending → sent | failed | unknown (reconcile) | cancelled
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    last_error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ChannelCursor(Base):
    """Where a pull-based channel stopped (kf next_cursor, archive seq, IMAP UID)."""

    __tablename__ = "channel_cursors"
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class DeadLetter(Base):
    """A work item that failed N times; shown in the console for an operator."""

    __tablename__ = "dead_letters"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    topic: Mapped[str] = mapped_column(String(64))
    item: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), nullable=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    target_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
