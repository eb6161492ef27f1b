"""Signed click-tracking tokens: /r/<token> names a (link, recipient) pair that cannot be
guessed or altered, so click counts cannot be forged by walking ids."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct

from sqlalchemy.ext.asyncio import AsyncSession

from .models import BroadcastClick, BroadcastLink, BroadcastRecipient

_MAC_BYTES = 8


def _key(secret_key: str) -> bytes:
    return hashlib.sha256(b"crmbot-click\x00" + secret_key.encode()).digest()


def sign_click(secret_key: str, link_id: int, recipient_id: int) -> str:
    body = struct.pack(">QQ", link_id, recipient_id)
    mac = hmac.new(_key(secret_key), body, hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(body + mac).decode().rstrip("=")


def open_click(secret_key: str, token: str) -> tuple[int, int] | None:
    """(link_id, recipient_id), or None for a token we did not sign."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError):
        return None
    if len(raw) != 16 + _MAC_BYTES:
        return None
    body, mac = raw[:16], raw[16:]
    expected = hmac.new(_key(secret_key), body, hashlib.sha256).digest()[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        return None
    link_id, recipient_id = struct.unpack(">QQ", body)
    return int(link_id), int(recipient_id)


async def record_click(session: AsyncSession, secret_key: str, token: str) -> str | None:
    """Count a click and return where to send the visitor; None for a bad token."""
    opened = open_click(secret_key, token)
    if opened is None:
        return None
    link_id, recipient_id = opened
    link = await session.get(BroadcastLink, link_id)
    if link is None or await session.get(BroadcastRecipient, recipient_id) is None:
        return None
    session.add(BroadcastClick(link_id=link_id, recipient_id=recipient_id))
    return link.url
