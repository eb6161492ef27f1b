"""Time-based one-time passwords (RFC 6238, HMAC-SHA1, 6 digits, 30 s) for admins."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote

STEP = 30
DIGITS = 6


def new_secret() -> str:
    return base64.b32encode(secrets.token_bytes(20)).decode().rstrip("=")


def _code(secret: str, counter: int) -> str:
    key = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F  # RFC 4226 §5.3 dynamic truncation
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def code_at(secret: str, at: float) -> str:
    return _code(secret, int(at // STEP))


def verify(secret: str, code: str, at: float | None = None, window: int = 1) -> bool:
    """True if `code` matches the current step or one step either side (clock drift)."""
    now = time.time() if at is None else at
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return False
    counter = int(now // STEP)
    return any(
        hmac.compare_digest(_code(secret, counter + d), code) for d in range(-window, window + 1)
    )


def provisioning_uri(secret: str, account: str, issuer: str = "crmbot") -> str:
    """otpauth:// URI that authenticator apps import (Key URI Format)."""
    return (
        f"otpauth://totp/{quote(issuer)}:{quote(account)}?secret={secret}"
        f"&issuer={quote(issuer)}&digits={DIGITS}&period={STEP}"
    )
