"""Auto-reply tables. First slice: keyword → reply rules (issue 6 grows this)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from conversations.db import Base, UTCDateTime, utcnow
from conversations.models import BigId


class KeywordRule(Base):
    __tablename__ = "autoreply_keyword_rules"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    keyword: Mapped[str] = mapped_column(String(200))
    match: Mapped[str] = mapped_column(String(16), default="contains")  # exact | contains
    reply: Mapped[str] = mapped_column(Text)
    priority: Mapped[int] = mapped_column(Integer, default=100)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
