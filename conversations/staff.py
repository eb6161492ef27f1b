"""Staff accounts: creation, password hashing (scrypt) and the password policy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from .access import AccessDenied, Role, Viewer
from .actions import audit
from .models import StaffUser, Team

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


async def _admin_only(viewer: Viewer) -> None:
    if viewer.role != Role.ADMIN:
        raise AccessDenied("only admins manage users")


async def set_role(
    session: AsyncSession,
    viewer: Viewer,
    staff_id: int,
    *,
    role: Role,
    team_id: int | None,
    ip: str | None = None,
) -> StaffUser:
    """Change a user's role or team; every change is audited (issue 9)."""
    await _admin_only(viewer)
    user = await session.get(StaffUser, staff_id)
    if user is None:
        raise LookupError(staff_id)
    before = {"role": user.role, "team_id": user.team_id}
    if staff_id == viewer.staff_id and role != Role.ADMIN:
        raise ValueError("you cannot take away your own admin role")
    user.role = role.value
    user.team_id = team_id
    await audit(
        session,
        "permission_changed",
        actor_id=viewer.staff_id,
        target_type="staff",
        target_id=staff_id,
        detail={"before": before, "after": {"role": role.value, "team_id": team_id}},
        ip=ip,
    )
    return user


async def set_active(
    session: AsyncSession, viewer: Viewer, staff_id: int, active: bool, ip: str | None = None
) -> StaffUser:
    await _admin_only(viewer)
    user = await session.get(StaffUser, staff_id)
    if user is None:
        raise LookupError(staff_id)
    if staff_id == viewer.staff_id and not active:
        raise ValueError("you cannot deactivate yourself")
    user.active = active
    await audit(
        session,
        "user_activated" if active else "user_deactivated",
        actor_id=viewer.staff_id,
        target_type="staff",
        target_id=staff_id,
        ip=ip,
    )
    return user


async def change_password(
    session: AsyncSession, staff_id: int, current: str, new: str, ip: str | None = None
) -> None:
    """Raises PermissionError on a wrong current password, PasswordPolicyError on a weak one."""
    user = await session.get(StaffUser, staff_id)
    if user is None or not verify_password(current, user.password_hash):
        raise PermissionError("current password is wrong")
    check_policy(new)
    user.password_hash = hash_password(new)
    await audit(
        session,
        "password_changed",
        actor_id=staff_id,
        target_type="staff",
        target_id=staff_id,
        ip=ip,
    )


async def create_team(session: AsyncSession, viewer: Viewer, name: str) -> Team:
    await _admin_only(viewer)
    name = name.strip()
    if not name:
        raise ValueError("a team needs a name")
    if await session.scalar(select(Team.id).where(Team.name == name)):
        raise ValueError(f"team {name!r} exists")
    team = Team(name=name[:100])
    session.add(team)
    await session.flush()
    await audit(
        session,
        "team_created",
        actor_id=viewer.staff_id,
        target_type="team",
        target_id=team.id,
        detail={"name": team.name},
    )
    return team
