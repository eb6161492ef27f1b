"""Internal notes on a conversation (内部备注, never sent to the customer) and quick
replies (快捷回复): canned responses with variables, shared or personal."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .access import AccessDenied, Role, Viewer
from .db import Base, UTCDateTime, utcnow
from .models import BigId

MAX_NOTE_CHARS = 4000
_VARIABLE = re.compile(r"\{(\w+)\}")


class ConversationNote(Base):
    __tablename__ = "conversation_notes"
    __table_args__ = (Index("ix_conversation_notes_conversation", "conversation_id", "id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    author_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuickReply(Base):
    """A canned response; owner NULL = shared with everyone."""

    __tablename__ = "quick_replies"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id"), nullable=True, index=True
    )
    shortcut: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


async def add_note(
    session: AsyncSession, conversation_id: int, author_id: int, body: str
) -> ConversationNote:
    body = body.strip()
    if not body or len(body) > MAX_NOTE_CHARS:
        raise ValueError("a note has 1 to 4000 characters")
    note = ConversationNote(conversation_id=conversation_id, author_id=author_id, text=body)
    session.add(note)
    await session.flush()
    return note


async def notes_of(session: AsyncSession, conversation_id: int) -> list[ConversationNote]:
    rows = await session.scalars(
        select(ConversationNote)
        .where(ConversationNote.conversation_id == conversation_id)
        .order_by(ConversationNote.id)
    )
    return list(rows.all())


async def quick_replies_for(session: AsyncSession, viewer: Viewer) -> list[QuickReply]:
    """Shared replies and the viewer's own, by shortcut."""
    rows = await session.scalars(
        select(QuickReply)
        .where(
            QuickReply.active.is_(True),
            or_(QuickReply.owner_id.is_(None), QuickReply.owner_id == viewer.staff_id),
        )
        .order_by(QuickReply.shortcut)
    )
    return list(rows.all())


async def save_quick_reply(
    session: AsyncSession,
    viewer: Viewer,
    *,
    shortcut: str,
    title: str,
    body: str,
    shared: bool,
) -> QuickReply:
    """Personal replies for anyone; shared ones only for admins and managers."""
    if shared and viewer.role not in (Role.ADMIN, Role.MANAGER):
        raise AccessDenied("only admins and managers write shared quick replies")
    if not shortcut.strip() or not body.strip():
        raise ValueError("shortcut and body are required")
    reply = QuickReply(
        owner_id=None if shared else viewer.staff_id,
        shortcut=shortcut.strip()[:32],
        title=(title.strip() or shortcut.strip())[:100],
        body=body.strip(),
    )
    session.add(reply)
    await session.flush()
    return reply


async def delete_quick_reply(session: AsyncSession, viewer: Viewer, reply_id: int) -> None:
    reply = await session.get(QuickReply, reply_id)
    if reply is None:
        raise LookupError(reply_id)
    own = reply.owner_id == viewer.staff_id
    if not own and viewer.role not in (Role.ADMIN, Role.MANAGER):
        raise AccessDenied("not your quick reply")
    reply.active = False


def fill_variables(body: str, values: Mapping[str, str]) -> str:
    """Replace {customer_name}, {salesperson_name}, … ; unknown variables stay visible."""
    return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), body)
