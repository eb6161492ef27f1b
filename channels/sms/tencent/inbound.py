"""Tencent status callbacks (a JSON **array**) and reply callbacks (a JSON **object**),
both answered with {"result":0,"errmsg":"OK"}. Unsigned: protected by the URL's path
token and the optional IP allowlist. Sources: tencentcloud.com/document/product/382/43547
("SMS Sending Status Notification") and /43548 ("SMS Reply")."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from channels.base import MalformedPayload
from channels.sms.phone import InvalidPhone, normalise_phone
from conversations.types import Inbound, InboundMessage, MessageKind, MessageStatus, StatusUpdate

ACK = json.dumps({"result": 0, "errmsg": "OK"}).encode("utf-8")


def _digest(item: Mapping[str, Any]) -> str:
    canonical = json.dumps(item, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]


def _china_time(value: Any) -> datetime:
    try:
        return datetime.strptime(f"{value} +0800", "%Y-%m-%d %H:%M:%S %z").astimezone(UTC)
    except ValueError:
        raise MalformedPayload(f"bad time {value!r} in Tencent callback") from None


def _phone(nationcode: Any, mobile: Any) -> tuple[str, dict[str, str]]:
    raw = f"+{nationcode or 86}{mobile or ''}"
    try:
        e164 = normalise_phone(raw)
    except InvalidPhone:
        return raw, {}
    return e164, {"phone": e164}


def parse_status(item: Mapping[str, Any]) -> StatusUpdate:
    ok = str(item.get("report_status", "")).upper() == "SUCCESS"
    code = str(item.get("errmsg") or "")
    description = str(item.get("description") or "")
    session = item.get("SessionContext") or item.get("session_context") or item.get("ext")
    return StatusUpdate(
        provider_key=f"status:{item.get('sid')}:{_digest(item)}",
        status=MessageStatus.DELIVERED if ok else MessageStatus.FAILED,
        occurred_at=_china_time(item.get("user_receive_time")),
        provider_message_id=str(item.get("sid") or "") or None,
        outbox_key=str(session) if session else None,
        error_code=None if ok else code or None,
        reason=None if ok else f"{code}: {description}" if description else code or None,
        raw=json.dumps(item, ensure_ascii=False),
    )


def parse_reply(item: Mapping[str, Any]) -> InboundMessage:
    external_id, hints = _phone(item.get("nationcode"), item.get("mobile"))
    try:
        occurred = datetime.fromtimestamp(int(item.get("time", 0)), UTC)
    except (TypeError, ValueError):
        raise MalformedPayload("bad time in Tencent reply") from None
    return InboundMessage(
        provider_key=f"reply:{_digest(item)}",  # no message id in the push: hash it
        external_id=external_id,
        kind=MessageKind.TEXT,
        text=str(item.get("text") or ""),
        occurred_at=occurred,
        raw=json.dumps(item, ensure_ascii=False),
        payload={k: str(item[k]) for k in ("sign", "extend") if item.get(k) not in (None, "")},
        contact_hints=hints,
    )


def parse_push(body: bytes) -> Sequence[Inbound]:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedPayload("Tencent callback is not JSON") from None
    if isinstance(data, list):
        if not all(isinstance(i, Mapping) for i in data):
            raise MalformedPayload("Tencent status items must be objects")
        return [parse_status(i) for i in data]
    if isinstance(data, Mapping) and "text" in data:
        return [parse_reply(data)]
    if isinstance(data, Mapping) and "report_status" in data:
        return [parse_status(data)]
    raise MalformedPayload("Tencent callback is neither a status array nor a reply")
