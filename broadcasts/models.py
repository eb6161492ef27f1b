"""Broadcasts (群发) and scheduled reminders: definitions, runs, frozen recipients, links.

Invariants from DESIGN.md live here as unique constraints:
- broadcast_runs: (broadcast_id, fire_time) unique — one schedule fire (invariant 5);
- broadcast_recipients: (run_id, customer_id) unique — the audience frozen once (invariant 4);
- broadcast_clicks: one row per click, links signed so ids cannot be guessed.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from conversations.db import Base, UTCDateTime, utcnow
from conversations.models import BigId


class BroadcastStatus(enum.StrEnum):
    DRAFT = "draft"
    PENDING_APPROVAL = "pending_approval"  # waits for a manager (审批)
    SCHEDULED = "scheduled"  # confirmed; fires at next_fire_at
    FINISHED = "finished"  # no more fires (one-off done, or cron past its end)
    CANCELLED = "cancelled"


class RunStatus(enum.StrEnum):
    FREEZING = "freezing"  # the audience is not frozen yet
    SENDING = "sending"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class RecipientStatus(enum.StrEnum):
    PENDING = "pending"
    GROUPING = "grouping"  # on a task channel (WeCom 企业群发): waits for its run's tasks
    QUEUED = "queued"  # an outbox row (or a task channel's task) exists
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    SKIPPED = "skipped"  # see skip_reason
    CANCELLED = "cancelled"


class SkipReason(enum.StrEnum):
    UNREACHABLE = "unreachable"  # no identity/address on any channel in the order
    SUPPRESSED = "suppressed"  # do-not-contact on every reachable channel
    FREQUENCY_CAP = "frequency_cap"
    NO_CONTENT = "no_content"  # no variant for any reachable channel
    INVALID_CONTENT = "invalid_content"
    MERGED = "merged"  # the customer was merged into another after the freeze
    # task channels (WeCom 企业群发) report these per recipient
    NOT_CONTACT = "not_contact"  # no longer a contact of the salesperson
    ALREADY_RECEIVED = "already_received"  # got another group send (WeCom's own cap)
    MONTHLY_CAP = "monthly_cap"  # over WeCom's per-customer monthly group-send cap
    NOT_SENT = "not_sent"  # the salesperson sent the task but left this group out


class Broadcast(Base):
    """A group message (or a one-to-one reminder): audience + content + channels + schedule."""

    __tablename__ = "broadcasts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str] = mapped_column(String(16), default="marketing")  # or "reminder"
    status: Mapped[str] = mapped_column(String(20), default=BroadcastStatus.DRAFT.value)
    # {"kind": "customers"|"upload"|"salespeople"|"channel"|"segment"|"tags"|"birthday", ...}
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # per channel family: {"sms": {...}, "email": {...}, "wecom": {...}}
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    channel_order: Mapped[list[Any]] = mapped_column(default=list)  # account ids, preferred first
    # {"kind": "now"|"at"|"cron", "at": local ISO, "cron": "0 9 * * 1", "end": local ISO}
    schedule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    # {"max_per_customer": 2, "period_days": 7}; empty = the installation's default
    frequency_cap: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requires_approval: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), nullable=True)
    approved_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BroadcastRun(Base):
    """One fire of a broadcast: its own frozen audience and progress."""

    __tablename__ = "broadcast_runs"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "fire_time"),
        Index("ix_broadcast_runs_status", "status"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"), index=True)
    fire_time: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.FREEZING.value)
    total: Mapped[int] = mapped_column(Integer, default=0)
    frozen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # the one queuer driving this run (a lease; the outbox key is the real guarantee)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BroadcastRecipient(Base):
    """A frozen audience member: pending → queued → sent/delivered/failed, or skipped."""

    __tablename__ = "broadcast_recipients"
    __table_args__ = (
        UniqueConstraint("run_id", "customer_id"),
        Index("ix_broadcast_recipients_run_status", "run_id", "status", "id"),
        Index("ix_broadcast_recipients_customer_queued", "customer_id", "queued_at"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("broadcast_runs.id"))
    # None on a group row (客户群群发): the row is a WeCom group, `address` its chat id
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default=RecipientStatus.PENDING.value)
    skip_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("channel_accounts.id"), nullable=True)
    address: Mapped[str | None] = mapped_column(String(255), nullable=True)
    hop: Mapped[int] = mapped_column(Integer, default=0)  # index into channel_order used
    # the conversation message queued with its outbox row; its status is the send outcome
    message_id: Mapped[int | None] = mapped_column(BigId, nullable=True, index=True)
    marketing: Mapped[bool] = mapped_column(default=True)  # counts towards frequency caps
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)


class BroadcastLink(Base):
    """A link in a broadcast's content, rewritten to /r/<signed token> for click counts."""

    __tablename__ = "broadcast_links"
    __table_args__ = (UniqueConstraint("broadcast_id", "url"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"))
    url: Mapped[str] = mapped_column(Text)


class BroadcastClick(Base):
    __tablename__ = "broadcast_clicks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("broadcast_links.id"), index=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("broadcast_recipients.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AccountPacing(Base):
    """The next free send slot of a rate-limited account, shared by every queuer."""

    __tablename__ = "broadcast_account_pacing"
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"), primary_key=True)
    next_slot: Mapped[datetime] = mapped_column(UTCDateTime)
