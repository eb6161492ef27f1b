"""Customer groups (客户群): the groups, their members, the join/leave history, group
welcome templates (入群欢迎语素材), daily statistics, hand-overs and archived group
messages.

Every table carries the unique constraint that makes its writer idempotent: a replayed
change_external_chat event, a re-run sync page or a repeated statistics fetch writes the
same rows again instead of new ones.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from conversations.db import Base, UTCDateTime, utcnow
from conversations.models import BigId

# member types of groupchat/get (doc 92122)
STAFF_MEMBER = 1  # 企业成员
EXTERNAL_MEMBER = 2  # 外部联系人


class CustomerGroup(Base):
    """One customer group chat (客户群) of a 客户联系 account."""

    __tablename__ = "wecom_groups"
    __table_args__ = (
        UniqueConstraint("account_id", "chat_id"),
        Index("ix_wecom_groups_owner", "account_id", "owner_userid"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    # the corp, so archived messages (another account of the same corp) find the group
    corp_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    chat_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200), default="")
    owner_userid: Mapped[str] = mapped_column(String(64), default="")
    notice: Mapped[str] = mapped_column(Text, default="")
    # groupchat/list status: 0 normal, 1 owner resigned, 2 hand-over under way, 3 handed over
    owner_status: Mapped[int] = mapped_column(Integer, default=0)
    admin_userids: Mapped[list[Any]] = mapped_column(default=list)
    member_version: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    dismissed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # an event said something changed that only groupchat/get tells: the refresh job fetches it
    needs_refresh: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class GroupMember(Base):
    """A member of a group: a salesperson (userid) or an external contact (external_userid),
    with the customer crmbot links them to when it knows them."""

    __tablename__ = "wecom_group_members"
    __table_args__ = (UniqueConstraint("group_id", "member_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("wecom_groups.id"))
    member_id: Mapped[str] = mapped_column(String(128))  # userid or external_userid
    member_type: Mapped[int] = mapped_column(Integer, default=EXTERNAL_MEMBER)
    name: Mapped[str] = mapped_column(String(200), default="")
    group_nickname: Mapped[str] = mapped_column(String(200), default="")
    unionid: Mapped[str] = mapped_column(String(128), default="")
    join_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # groupchat/get: 1 invited directly, 2 invited by link, 3 scanned the group QR code;
    # change_external_chat JoinScene: 0 invited by a member, 3 scanned the QR code
    join_scene: Mapped[int | None] = mapped_column(Integer, nullable=True)
    invitor_userid: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id"), nullable=True, index=True
    )
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # QuitScene: 0 left by themselves, 1 removed by the owner or an admin
    quit_scene: Mapped[int | None] = mapped_column(Integer, nullable=True)


class GroupMembershipChange(Base):
    """One join or leave: the group's membership history (stored once per event)."""

    __tablename__ = "wecom_group_membership_changes"
    __table_args__ = (UniqueConstraint("group_id", "member_id", "change", "at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("wecom_groups.id"), index=True)
    member_id: Mapped[str] = mapped_column(String(128))
    change: Mapped[str] = mapped_column(String(8))  # join | leave
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    scene: Mapped[int | None] = mapped_column(Integer, nullable=True)
    source: Mapped[str] = mapped_column(String(8), default="event")  # event | sync


class GroupWelcomeTemplate(Base):
    """A group welcome template (入群欢迎语素材) created through group_welcome_template/add;
    WeCom keeps the template, crmbot keeps a copy to list and edit it."""

    __tablename__ = "wecom_group_welcome_templates"
    __table_args__ = (UniqueConstraint("account_id", "template_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    template_id: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text, default="")
    # the attachment as WeCom takes it: {"image": {...}} or {"link": {...}} …
    attachment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notify: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class GroupDailyStat(Base):
    """groupchat/statistic for one owner on one (Beijing) day."""

    __tablename__ = "wecom_group_daily_stats"
    __table_args__ = (UniqueConstraint("account_id", "day", "owner_userid"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    day: Mapped[date] = mapped_column(Date, index=True)
    owner_userid: Mapped[str] = mapped_column(String(64))
    new_chat_cnt: Mapped[int] = mapped_column(Integer, default=0)
    chat_total: Mapped[int] = mapped_column(Integer, default=0)
    chat_has_msg: Mapped[int] = mapped_column(Integer, default=0)
    new_member_cnt: Mapped[int] = mapped_column(Integer, default=0)
    member_total: Mapped[int] = mapped_column(Integer, default=0)
    member_has_msg: Mapped[int] = mapped_column(Integer, default=0)  # active members
    msg_total: Mapped[int] = mapped_column(Integer, default=0)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GroupTransfer(Base):
    """One group handed to a new owner (groupchat/transfer or onjob_transfer)."""

    __tablename__ = "wecom_group_transfers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"), index=True)
    chat_id: Mapped[str] = mapped_column(String(128), index=True)
    resigned: Mapped[bool] = mapped_column(Boolean, default=False)
    from_userid: Mapped[str] = mapped_column(String(64))
    to_userid: Mapped[str] = mapped_column(String(64))
    errcode: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GroupMessage(Base):
    """An archived group message (会话存档 record with a roomid), linked to its group chat
    so the group's timeline shows it read-only, attributed to its sender."""

    __tablename__ = "wecom_group_messages"
    __table_args__ = (Index("ix_wecom_group_messages_chat", "corp_id", "chat_id", "sent_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("channel_events.id"), unique=True)
    corp_id: Mapped[str] = mapped_column(String(64), default="")
    chat_id: Mapped[str] = mapped_column(String(128))
    sender: Mapped[str] = mapped_column(String(128), default="")
    sender_type: Mapped[int] = mapped_column(Integer, default=EXTERNAL_MEMBER)
    kind: Mapped[str] = mapped_column(String(16), default="text")
    text: Mapped[str] = mapped_column(Text, default="")
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
