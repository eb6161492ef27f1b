"""The tables of channel QR codes (渠道活码): one row per code and one log row per
customer added through it or lost from it (the statistics are counted from the log)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from conversations.db import Base, UTCDateTime, utcnow
from conversations.models import BigId


class ContactCode(Base):
    """A 「联系我」 QR code on a 客户联系 account, identified by its `state` (≤30 chars).

    `members` is the rota: [{"userid", "daily_limit" (0 = none), "weekdays" [0=Mon..6],
    "start_hour", "end_hour"}]; `current_users` is the user list last sent to WeCom."""

    __tablename__ = "wecom_contact_codes"
    __table_args__ = (UniqueConstraint("account_id", "state"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    name: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(30))
    code_type: Mapped[str] = mapped_column(String(8), default="single")  # single | multi
    rota_mode: Mapped[str] = mapped_column(String(16), default="round_robin")  # | schedule
    skip_verify: Mapped[bool] = mapped_column(Boolean, default=True)
    members: Mapped[list[Any]] = mapped_column(default=list)
    backup_userid: Mapped[str] = mapped_column(String(64), default="")
    tag_ids: Mapped[list[Any]] = mapped_column(default=list)  # crmbot tag ids
    welcome_text: Mapped[str] = mapped_column(Text, default="")
    welcome_attachments: Mapped[list[Any]] = mapped_column(default=list)  # WeCom shapes
    config_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    qr_code: Mapped[str] = mapped_column(String(500), default="")
    current_users: Mapped[list[Any]] = mapped_column(default=list)
    last_userid: Mapped[str] = mapped_column(String(64), default="")  # round-robin position
    revision: Mapped[int] = mapped_column(Integer, default=0)  # user-list updates queued
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | deleted
    created_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ContactCodeEvent(Base):
    """A customer added through a code ("added") or deleting its salesperson ("lost").

    Unique per (code, kind, customer, salesperson, time): the same WeCom event pushed to
    both the app and the contact callback URL is logged once."""

    __tablename__ = "wecom_contact_code_events"
    __table_args__ = (
        UniqueConstraint(
            "code_id",
            "kind",
            "external_userid",
            "userid",
            "occurred_at",
            name="uq_wecom_code_event_once",
        ),
        Index("ix_wecom_contact_code_events_contact", "account_id", "external_userid", "userid"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code_id: Mapped[int] = mapped_column(ForeignKey("wecom_contact_codes.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    kind: Mapped[str] = mapped_column(String(8))  # added | lost
    external_userid: Mapped[str] = mapped_column(String(128))
    userid: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
