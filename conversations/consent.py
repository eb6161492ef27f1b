"""Do-not-contact list and consent evidence, shared by SMS, email and WeCom sends.

Suppression is per (channel, address, scope): scope is the sender identity the customer
opted out of (an SMS 【签名】, a mailbox) or "*" for every sender on that channel.
Every change leaves a `ConsentEvent` with its evidence (time, channel, message).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    String,
    Text,
    UniqueConstraint,
    and_,
    delete,
    exists,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, UTCDateTime, utcnow
from .models import BigId

ANY_SCOPE = "*"


class Suppression(Base):
    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("channel", "address", "scope"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # sms | email | wecom
    address: Mapped[str] = mapped_column(String(255), index=True)  # E.164, lower-case email
    scope: Mapped[str] = mapped_column(String(100), default=ANY_SCOPE)
    reason: Mapped[str] = mapped_column(String(32))  # opt_out | bounce | complaint | manual
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsentEvent(Base):
    __tablename__ = "consent_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(255), index=True)
    scope: Mapped[str] = mapped_column(String(100), default=ANY_SCOPE)
    action: Mapped[str] = mapped_column(String(16))  # opt_out | opt_in | bounce | consent
    source: Mapped[str] = mapped_column(String(32))  # reply | one_click | console | import | dsn
    evidence: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[int | None] = mapped_column(nullable=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


async def opt_out(
    session: AsyncSession,
    *,
    channel: str,
    address: str,
    scope: str = ANY_SCOPE,
    source: str,
    evidence: str = "",
    message_id: int | None = None,
    reason: str = "opt_out",
) -> bool:
    """Suppress an address; True if it was not suppressed before (send one confirmation)."""
    already = await is_suppressed(session, channel=channel, address=address, scope=scope)
    session.add(
        ConsentEvent(
            channel=channel,
            address=address,
            scope=scope,
            action="bounce" if reason == "bounce" else "opt_out",
            source=source,
            evidence=evidence[:2000],
            message_id=message_id,
        )
    )
    if already:
        return False
    session.add(Suppression(channel=channel, address=address, scope=scope, reason=reason))
    await session.flush()
    return True


async def opt_in(
    session: AsyncSession,
    *,
    channel: str,
    address: str,
    scope: str = ANY_SCOPE,
    source: str,
    evidence: str = "",
    message_id: int | None = None,
) -> bool:
    """Lift a suppression (START/UNSTOP, or consent recorded in the console)."""
    result = await session.execute(
        delete(Suppression).where(
            Suppression.channel == channel,
            Suppression.address == address,
            Suppression.scope == scope,
        )
    )
    session.add(
        ConsentEvent(
            channel=channel,
            address=address,
            scope=scope,
            action="opt_in",
            source=source,
            evidence=evidence[:2000],
            message_id=message_id,
        )
    )
    return bool(getattr(result, "rowcount", 0))


def suppressed_clause(channel: str, address: ColumnElement[str], scope: str) -> ColumnElement[bool]:
    """SQL condition 'this address is on the do-not-contact list' for segment queries."""
    return exists(
        select(Suppression.id).where(
            Suppression.channel == channel,
            Suppression.address == address,
            or_(Suppression.scope == scope, Suppression.scope == ANY_SCOPE),
        )
    )


async def is_suppressed(
    session: AsyncSession, *, channel: str, address: str, scope: str = ANY_SCOPE
) -> bool:
    found = await session.scalar(
        select(Suppression.id)
        .where(
            and_(
                Suppression.channel == channel,
                Suppression.address == address,
                or_(Suppression.scope == scope, Suppression.scope == ANY_SCOPE),
            )
        )
        .limit(1)
    )
    return found is not None
