"""Staff accounts: creation, password hashing (scrypt) and the password policy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .access import Role
from .models import StaffUser

_N, _R, _P = 2**14, 8, 1
MIN_PASSWORD = 10


class PasswordPolicyError(ValueError):
    pass


def check_policy(password: str) -> None:
    """At least 10 characters mixing letters and digits (issue 9: password policy)."""
    if len(password) < MIN_PASSWORD:
        raise PasswordPolicyError(f"password must have at least {MIN_PASSWORD} characters")
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        raise PasswordPolicyError("password must mix letters and digits")


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt_b64), n=int(n), r=int(r), p=int(p), dklen=32
    )
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def generate_password() -> str:
    """A password that passes the policy, for first logins printed once."""
    while True:
        candidate = secrets.token_urlsafe(12)
        if any(c.isdigit() for c in candidate) and any(c.isalpha() for c in candidate):
            return candidate


async def create_staff(
    session: AsyncSession,
    *,
    username: str,
    password: str,
    role: Role,
    display_name: str | None = None,
    team_id: int | None = None,
    locale: str = "zh",
) -> StaffUser:
    check_policy(password)
    if await session.scalar(select(StaffUser.id).where(StaffUser.username == username)):
        raise ValueError(f"user {username!r} already exists")
    user = StaffUser(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=role.value,
        team_id=team_id,
        locale=locale,
    )
    session.add(user)
    await session.flush()
    return user


async def staff_count(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(StaffUser)) or 0)
