"""Archived chat records → Inbound values, and the RSA step before DecryptData.

Each record's `encrypt_random_key` is RSA(PKCS#1 v1.5)-encrypted with the corp's public
key of version `publickey_ver`; the operator keeps one private key per version. The
decrypted JSON (doc 91774) names the writer in `from`: an external contact (wm…/wo…)
wrote → INBOUND; a salesperson wrote → OUTBOUND with staff_external_id, so the timeline
shows both sides, read-only.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from channels.wecom.kf_inbound import KINDS
from conversations.types import Direction, Inbound, InboundEvent, InboundMessage, MessageKind

from .sdk import ArchiveConfigError

# archived record types with a documented shape (doc 91774); a meta-test wants a fixture each
DOCUMENTED_ARCHIVE = frozenset(
    [f"message.{t}" for t in ("text", "image", "voice", "video", "file", "location", "link")]
    + ["wecom.archive.recall"]
)
EXTERNAL_PREFIXES = ("wm", "wo")  # external_userid of WeChat users


def load_private_keys(raw: str | None) -> dict[int, rsa.RSAPrivateKey]:
    """`{"<publickey_ver>": "-----BEGIN PRIVATE KEY-----…"}` → keys by version."""
    if not raw:
        return {}
    try:
        pems = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ArchiveConfigError("private_keys 不是 JSON (private_keys is not JSON)") from exc
    keys: dict[int, rsa.RSAPrivateKey] = {}
    for ver, pem in dict(pems).items():
        try:
            key = serialization.load_pem_private_key(str(pem).encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ArchiveConfigError(
                f"版本 {ver} 的私钥无法读取 (private key v{ver} unreadable)"
            ) from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ArchiveConfigError(f"版本 {ver} 的私钥不是 RSA (key v{ver} is not RSA)")
        keys[int(ver)] = key
    return keys


def random_key(keys: Mapping[int, rsa.RSAPrivateKey], version: int, encrypted: str) -> str:
    key = keys.get(version)
    if key is None:
        raise ArchiveConfigError(
            f"缺少 publickey_ver={version} 的私钥：请在账号设置中加入该版本的私钥 "
            f"(no private key for key version {version})"
        )
    try:
        plain = key.decrypt(base64.b64decode(encrypted), padding.PKCS1v15()).decode()
    except (ValueError, binascii.Error) as exc:
        raise key_mismatch(version) from exc
    # OpenSSL's implicit rejection answers a wrong key with pseudo-random bytes instead of
    # an error: a random key is printable text, anything else is the wrong private key
    if not plain or not plain.isprintable():
        raise key_mismatch(version)
    return plain


def key_mismatch(version: int) -> ArchiveConfigError:
    return ArchiveConfigError(
        f"publickey_ver={version} 的私钥无法解密：版本与私钥不匹配 "
        f"(the private key for version {version} does not fit)"
    )


def _external(userid: str) -> bool:
    return userid.startswith(EXTERNAL_PREFIXES)


def _text(kind: MessageKind, part: Mapping[str, Any]) -> str:
    if kind == MessageKind.TEXT:
        return str(part.get("content", ""))
    if kind == MessageKind.LOCATION:
        return str(part.get("title") or part.get("address") or "")
    if kind == MessageKind.LINK:
        return f"{part.get('title', '')} {part.get('link_url', '')}".strip()
    if kind == MessageKind.FILE:
        return str(part.get("filename", ""))
    return ""


def to_inbound(record: Mapping[str, Any], seq: int) -> Sequence[Inbound]:
    """One decrypted chat record → a read-only timeline entry (or a stored event)."""
    raw = json.dumps(record, ensure_ascii=False, sort_keys=True)
    msgid = str(record.get("msgid", ""))
    key = f"archive:{msgid or seq}"
    when = datetime.fromtimestamp(int(record.get("msgtime", 0)) / 1000, UTC)
    sender = str(record.get("from", ""))
    to = [str(t) for t in record.get("tolist") or []]
    action = str(record.get("action", "send"))
    if action != "send" or record.get("roomid"):
        # recalls, switches and group chats (客户群, issue 13) are kept as events
        return [
            InboundEvent(
                provider_key=key,
                event_type=f"wecom.archive.{'group_message' if record.get('roomid') else action}",
                occurred_at=when,
                payload={**record, "seq": seq},
                raw=raw,
                external_id=sender if _external(sender) else None,
                staff_external_id=None if _external(sender) else sender or None,
            )
        ]
    msgtype = str(record.get("msgtype", ""))
    kind = KINDS.get(msgtype, MessageKind.UNKNOWN)
    part = record.get(msgtype) or {}
    if _external(sender):
        direction, customer, staff = Direction.INBOUND, sender, (to[0] if to else None)
    else:
        customer = next((t for t in to if _external(t)), "")
        direction, staff = Direction.OUTBOUND, sender
    if not customer:
        # an internal chat between colleagues: no customer's timeline to put it in
        return [
            InboundEvent(
                provider_key=key,
                event_type="wecom.archive.internal_message",
                occurred_at=when,
                payload={**record, "seq": seq},
                raw=raw,
                staff_external_id=sender or None,
            )
        ]
    return [
        InboundMessage(
            provider_key=key,
            external_id=customer,
            kind=kind,
            text=_text(kind, part if isinstance(part, Mapping) else {}),
            occurred_at=when,
            raw=raw,
            payload={**record, "seq": seq},
            direction=direction,
            staff_external_id=staff,
            contact_hints={"external_userid": customer},
            provider_message_id=msgid or None,
        )
    ]
