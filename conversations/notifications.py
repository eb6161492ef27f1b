"""Notifications to staff: shown in the console, and pushed as a WeCom app message
(应用消息) when a `wecom.app` account exists and the staff member has a WeCom userid."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .actions import queue_operation
from .db import Base, UTCDateTime, utcnow
from .models import BigId, ChannelAccount, StaffUser
from .types import Purpose

STAFF_APP_KIND = "wecom.app"


class StaffNotification(Base):
    __tablename__ = "staff_notifications"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)  # idempotency
    kind: Mapped[str] = mapped_column(String(32))  # handoff | lead | lost_customer | reminder …
    text: Mapped[str] = mapped_column(String(2000))
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


async def notify_staff(
    session: AsyncSession,
    *,
    staff_id: int,
    kind: str,
    text: str,
    key: str,
    conversation_id: int | None = None,
) -> bool:
    """Record a notification once per `key` and queue its WeCom push. False if seen before."""
    if await session.scalar(select(StaffNotification.id).where(StaffNotification.key == key)):
        return False
    session.add(
        StaffNotification(
            staff_id=staff_id, key=key, kind=kind, text=text, conversation_id=conversation_id
        )
    )
    staff = await session.get(StaffUser, staff_id)
    app = await session.scalar(
        select(ChannelAccount)
        .where(ChannelAccount.kind == STAFF_APP_KIND, ChannelAccount.enabled.is_(True))
        .order_by(ChannelAccount.id)
        .limit(1)
    )
    if staff is not None and staff.wecom_userid and app is not None:
        await queue_operation(
            session,
            app.id,
            recipient=staff.wecom_userid,
            purpose=Purpose.NOTIFICATION,
            idempotency_key=f"notify:{key}",
            payload={"kind": "text", "text": text, "operation": "staff_message"},
        )
    await session.flush()
    return True
