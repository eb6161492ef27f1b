"""WeCom's own tables: follow relations (客户 ↔ 跟进成员), group-send tasks with per-member
and per-customer results, hand-over records and media downloads.

Each table carries the unique constraint that makes its job idempotent: a restart of a
sync, a poll or a hand-over writes the same rows again instead of new ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from conversations.db import Base, UTCDateTime, utcnow
from conversations.models import BigId


class FollowRelation(Base):
    """One salesperson following one external contact (跟进关系) on a 客户联系 account."""

    __tablename__ = "wecom_follow_relations"
    __table_args__ = (UniqueConstraint("account_id", "external_userid", "userid"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    external_userid: Mapped[str] = mapped_column(String(128))
    userid: Mapped[str] = mapped_column(String(64), index=True)
    # active | deleted_by_staff | deleted_by_customer | transferred
    status: Mapped[str] = mapped_column(String(24), default="active")
    state: Mapped[str] = mapped_column(String(64), default="")  # 「联系我」 state (channel code)
    remark: Mapped[str] = mapped_column(String(64), default="")
    tag_ids: Mapped[list[Any]] = mapped_column(default=list)
    add_way: Mapped[int | None] = mapped_column(Integer, nullable=True)
    needs_refresh: Mapped[bool] = mapped_column(Boolean, default=False)
    added_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class GroupSendTask(Base):
    """A 企业群发 task (add_msg_template): nothing is sent until members confirm it."""

    __tablename__ = "wecom_group_send_tasks"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"), index=True)
    outbox_key: Mapped[str] = mapped_column(String(128), unique=True)
    reference: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    sender: Mapped[str] = mapped_column(String(64), default="")
    # "single" (customers) or "group" (客户群: the recipient rows hold chat ids)
    chat_type: Mapped[str] = mapped_column(String(8), default="single", server_default="single")
    text: Mapped[str] = mapped_column(Text, default="")
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    msgid: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    # queued → created → finished | cancelled | failed
    status: Mapped[str] = mapped_column(String(16), default="queued")
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    reminds: Mapped[list[Any]] = mapped_column(default=list)  # epoch seconds of reminders
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class GroupSendMember(Base):
    """Whether one member confirmed a task (get_groupmsg_task: 0 not yet, 2 sent)."""

    __tablename__ = "wecom_group_send_members"
    __table_args__ = (UniqueConstraint("task_id", "userid"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("wecom_group_send_tasks.id"))
    userid: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer, default=0)
    send_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class GroupSendRecipient(Base):
    """One customer of a task. status: 0 not sent, 1 sent, 2 not a contact, 3 already
    received another group send; -1 skipped by crmbot (monthly cap)."""

    __tablename__ = "wecom_group_send_recipients"
    __table_args__ = (
        UniqueConstraint("task_id", "external_userid"),
        Index("ix_wecom_group_send_recipients_customer", "account_id", "external_userid"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("wecom_group_send_tasks.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    external_userid: Mapped[str] = mapped_column(String(128))
    userid: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    send_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TransferRecord(Base):
    """One customer handed from one salesperson to another (在职继承 / 离职继承).

    status: requested (errcode 0, WeCom completes it within 24 h), waiting (2),
    done (1), refused (3), limit (4), failed (a per-customer errcode)."""

    __tablename__ = "wecom_transfers"
    __table_args__ = (
        Index("ix_wecom_transfers_pair", "account_id", "handover_userid", "takeover_userid"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    resigned: Mapped[bool] = mapped_column(Boolean, default=False)
    handover_userid: Mapped[str] = mapped_column(String(64))
    takeover_userid: Mapped[str] = mapped_column(String(64))
    external_userid: Mapped[str] = mapped_column(String(128), index=True)
    errcode: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="requested")
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    takeover_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class MediaFetch(Base):
    """A media file to download (media/get) for a received message; refused files leave
    their reason on the message."""

    __tablename__ = "wecom_media_fetches"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"), index=True)
    media_id: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(
        String(16), default="pending", index=True
    )  # pending|done|refused|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
