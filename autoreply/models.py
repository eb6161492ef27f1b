"""Auto-reply tables: reply rules, the FAQ knowledge base (知识库) and its product-name
dictionary, per-account lifecycle settings, and the version counters that tell every
process when its in-memory index is stale."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from conversations.db import Base, UTCDateTime, utcnow
from conversations.models import BigId


class KeywordRule(Base):
    """A reply rule: keywords or a regular expression, a scope, and reply variants.

    `match` is exact | contains (any of `keywords`) | all (every keyword) | regex
    (`pattern`). `action` is reply | handoff. Lower `priority` wins.
    """

    __tablename__ = "autoreply_keyword_rules"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    match: Mapped[str] = mapped_column(String(16), default="contains")
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    pattern: Mapped[str | None] = mapped_column(String(500), nullable=True)
    action: Mapped[str] = mapped_column(String(16), default="reply")
    # [{"text": "...", "channels": {"email": {"kind": "email", "payload": {"html": …}}}}]
    replies: Mapped[list[Any]] = mapped_column(default=list)
    choice: Mapped[str] = mapped_column(String(16), default="random")  # random | round_robin
    priority: Mapped[int] = mapped_column(Integer, default=100)
    # scope: empty list = everywhere
    channel_kinds: Mapped[list[Any]] = mapped_column(default=list)  # "wecom", "sms.aliyun"
    account_ids: Mapped[list[Any]] = mapped_column(default=list)
    tag_ids: Mapped[list[Any]] = mapped_column(default=list)  # customer has any of these
    # {"tz": "Asia/Shanghai", "days": [0..6], "start": "09:00", "end": "18:00"}
    time_window: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    last_hit_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class FaqEntry(Base):
    """A question/answer pair (常见问题) with alternative phrasings customers use."""

    __tablename__ = "autoreply_faq_entries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # stable id used by import/export and the evaluation set ("refund-policy")
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    question: Mapped[str] = mapped_column(String(500))
    alternatives: Mapped[list[Any]] = mapped_column(default=list)
    answer: Mapped[str] = mapped_column(Text)
    channels: Mapped[dict[str, Any]] = mapped_column(default=dict)  # per-channel content
    category: Mapped[str] = mapped_column(String(64), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    last_hit_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class FaqTerm(Base):
    """A product name or term for the tokenizer, with the synonyms that mean it."""

    __tablename__ = "autoreply_faq_terms"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    term: Mapped[str] = mapped_column(String(64), unique=True)
    synonyms: Mapped[list[Any]] = mapped_column(default=list)


class AccountReplySettings(Base):
    """Lifecycle replies and business hours of one channel account."""

    __tablename__ = "autoreply_account_settings"
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"), primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    # {"0": [["09:00", "18:00"]], …} keyed by ISO weekday - 1 (Monday = "0")
    weekly_hours: Mapped[dict[str, Any]] = mapped_column(default=dict)
    holidays: Mapped[list[Any]] = mapped_column(default=list)  # ["2026-10-01", …]
    workdays: Mapped[list[Any]] = mapped_column(default=list)  # 调休 weekend days worked
    welcome_text: Mapped[str] = mapped_column(Text, default="")
    away_text: Mapped[str] = mapped_column(Text, default="")
    handoff_text: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class IndexVersion(Base):
    """One counter per index ("rules", "faq"), bumped in every transaction that edits
    its source rows so other processes notice and rebuild."""

    __tablename__ = "autoreply_index_versions"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
