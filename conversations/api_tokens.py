"""API tokens for the JSON API: shown once, stored as a SHA-256 hash, one user each,
so the API applies exactly the permissions of the user's role."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, UTCDateTime, utcnow
from .models import BigId, StaffUser

TOKEN_PREFIX = "crm_"  # noqa: S105  (a prefix that makes leaked tokens recognisable)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # a high-entropy random token needs no slow hash: SHA-256 is enough to make a leaked
    # table useless, and it lets us look the token up by its hash
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))  # the first characters, to tell tokens apart
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(session: AsyncSession, staff_id: int, name: str) -> tuple[ApiToken, str]:
    """Create a token; the plain value is returned once and never stored."""
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        staff_id=staff_id,
        name=name.strip()[:100] or "API",
        token_hash=_digest(plain),
        hint=plain[: len(TOKEN_PREFIX) + 6],
    )
    session.add(row)
    await session.flush()
    return row, plain


async def user_for_token(session: AsyncSession, plain: str) -> StaffUser | None:
    """The active user owning an unrevoked token; marks the token used."""
    row = await session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(plain)))
    if row is None or row.revoked_at is not None:
        return None
    user = await session.get(StaffUser, row.staff_id)
    if user is None or not user.active:
        return None
    row.last_used_at = utcnow()
    return user


async def tokens_of(session: AsyncSession, staff_id: int) -> list[ApiToken]:
    rows = await session.scalars(
        select(ApiToken).where(ApiToken.staff_id == staff_id).order_by(ApiToken.id)
    )
    return list(rows.all())


async def revoke_token(session: AsyncSession, staff_id: int, token_id: int) -> bool:
    row = await session.get(ApiToken, token_id)
    if row is None or row.staff_id != staff_id or row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    return True
