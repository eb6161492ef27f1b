"""Parse WeCom callback bodies: the encrypted envelope and the decrypted message XML.

XML is read by flatxml (expat into a flat dict; no DTDs, so no entities: bombs are
refused before any expansion). Every documented MsgType maps to a MessageKind; events become InboundEvent
values; anything unknown is kept raw as MessageKind.UNKNOWN and acknowledged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime

from channels.base import MalformedPayload
from conversations.types import InboundEvent, InboundMessage, MessageKind

from .flatxml import XmlMalformed, XmlRefused, read_fields

MESSAGE_KINDS: Mapping[str, MessageKind] = {
    "text": MessageKind.TEXT,
    "image": MessageKind.IMAGE,
    "voice": MessageKind.VOICE,
    "video": MessageKind.VIDEO,
    "shortvideo": MessageKind.VIDEO,
    "file": MessageKind.FILE,
    "location": MessageKind.LOCATION,
    "link": MessageKind.LINK,
}


# Callback types crmbot knows by their documented shape (a meta-test checks that each has
# a fixture): app messages (doc 90239) and the system events of docs 92130/94670/95039.
# Anything else is still stored raw and acknowledged.
DOCUMENTED_CALLBACKS = frozenset(
    [f"message.{t}" for t in ("text", "image", "voice", "video", "location", "link")]
    + [
        f"wecom.change_external_contact.{c}"
        for c in (
            "add_external_contact",
            "add_half_external_contact",
            "edit_external_contact",
            "del_external_contact",
            "del_follow_user",
            "transfer_fail",
        )
    ]
    + [f"wecom.change_external_tag.{c}" for c in ("create", "update", "delete", "shuffle")]
    + [f"wecom.change_external_chat.{c}" for c in ("create", "update", "dismiss")]
    + ["wecom.kf_msg_or_event", "wecom.msgaudit_notify"]
)


def parse_xml(body: bytes | str) -> dict[str, str]:
    """Flat dict of the root's children; a nested element is kept as its items' texts."""
    try:
        root, fields = read_fields(body)
    except XmlRefused as exc:
        raise MalformedPayload(f"XML refused: {exc}") from exc
    except XmlMalformed as exc:
        raise MalformedPayload(f"malformed XML: {exc}") from exc
    if root != "xml":
        raise MalformedPayload(f"unexpected XML root <{root}>")
    return fields


def provider_key(fields: Mapping[str, str], plaintext: bytes) -> str:
    """MsgId when present; else a hash of the decrypted plaintext, because 客户联系 events
    all come from `sys` and share seconds (FromUserName+CreateTime collides, issue 11)."""
    msg_id = fields.get("MsgId") or fields.get("MsgID")
    if msg_id:
        return f"msg:{msg_id}"
    return "sha256:" + hashlib.sha256(plaintext).hexdigest()


def _occurred(fields: Mapping[str, str]) -> datetime:
    try:
        return datetime.fromtimestamp(int(fields.get("CreateTime", "0")), UTC)
    except (ValueError, OverflowError):
        return datetime.fromtimestamp(0, UTC)


def to_inbound(plaintext: bytes) -> InboundMessage | InboundEvent:
    """One decrypted callback plaintext → one Inbound value (pure)."""
    fields = parse_xml(plaintext)
    raw = plaintext.decode("utf-8", "replace")
    key = provider_key(fields, plaintext)
    msg_type = fields.get("MsgType", "")
    sender = fields.get("FromUserName", "")
    when = _occurred(fields)
    if msg_type == "event":
        event = fields.get("Event", "unknown")
        change = fields.get("ChangeType")
        event_type = f"wecom.{event}" + (f".{change}" if change else "")
        return InboundEvent(
            provider_key=key,
            event_type=event_type,
            occurred_at=when,
            payload=fields,
            raw=raw,
            external_id=fields.get("ExternalUserID") or None,
            staff_external_id=fields.get("UserID") or (sender if sender != "sys" else None),
        )
    kind = MESSAGE_KINDS.get(msg_type, MessageKind.UNKNOWN)
    return InboundMessage(
        provider_key=key,
        external_id=sender or "unknown",
        kind=kind,
        text=_text_of(kind, fields),
        occurred_at=when,
        raw=raw,
        payload=fields,
        provider_message_id=fields.get("MsgId") or None,
    )


def _text_of(kind: MessageKind, f: Mapping[str, str]) -> str:
    if kind == MessageKind.TEXT:
        return f.get("Content", "")
    if kind == MessageKind.LOCATION:
        return f.get("Label") or f"{f.get('Location_X', '')},{f.get('Location_Y', '')}"
    if kind == MessageKind.LINK:
        return f"{f.get('Title', '')} {f.get('Url', '')}".strip()
    return ""
