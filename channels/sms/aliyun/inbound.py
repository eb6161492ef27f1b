"""SmsReport (delivery receipts) and SmsUp (replies) HTTP batch pushes.

Both are POSTed as a JSON **array** (several items per request) and must be answered
with `{"code":0}`; the pushes are unsigned (protected by the URL's path token and the
optional IP allowlist) and may repeat, so every item gets a stable provider_key.
Sources: "SmsReport" help.aliyun.com/document_detail/101867.htm, "SmsUp"
help.aliyun.com/zh/sms/developer-reference/smsup-http.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from channels.base import MalformedPayload
from channels.sms.phone import InvalidPhone, normalise_phone
from conversations.types import Inbound, InboundMessage, MessageKind, MessageStatus, StatusUpdate

from .errors import DELIVERED

ACK = json.dumps({"code": 0, "msg": "接收成功"}, ensure_ascii=False).encode("utf-8")


def _time(value: Any) -> datetime:
    try:
        # Aliyun writes Beijing wall-clock time without an offset
        local = datetime.strptime(f"{value} +0800", "%Y-%m-%d %H:%M:%S %z")
    except ValueError:
        raise MalformedPayload(f"bad time {value!r} in Aliyun push") from None
    return local.astimezone(UTC)


def _digest(item: Mapping[str, Any]) -> str:
    canonical = json.dumps(item, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]


def _phone(raw: Any) -> tuple[str, dict[str, str]]:
    text = str(raw or "")
    try:
        e164 = normalise_phone(text)
    except InvalidPhone:
        return text, {}  # kept as the gateway wrote it rather than dropped
    return e164, {"phone": e164}


def parse_report(item: Mapping[str, Any]) -> StatusUpdate:
    err_code = str(item.get("err_code") or "")
    success = item.get("success")
    ok = success is True or str(success).lower() == "true" or err_code == DELIVERED
    biz_id = str(item.get("biz_id") or "") or None
    err_msg = str(item.get("err_msg") or "")
    return StatusUpdate(
        provider_key=f"report:{biz_id}:{_digest(item)}",
        status=MessageStatus.DELIVERED if ok else MessageStatus.FAILED,
        occurred_at=_time(item.get("report_time") or item.get("send_time")),
        provider_message_id=biz_id,
        outbox_key=str(item.get("out_id") or "") or None,
        error_code=None if ok else err_code or None,
        reason=None if ok else f"{err_code}: {err_msg}" if err_msg else err_code or None,
        raw=json.dumps(item, ensure_ascii=False),
    )


def parse_reply(item: Mapping[str, Any]) -> InboundMessage:
    external_id, hints = _phone(item.get("phone_number"))
    sequence = item.get("sequence_id")
    # sequence_id identifies an uplink; older pushes lack it, then the content decides
    key = f"up:{sequence}" if sequence not in (None, "") else f"up:{_digest(item)}"
    payload = {
        k: str(item[k])
        for k in ("sign_name", "dest_code", "sequence_id")
        if item.get(k) not in (None, "")
    }
    return InboundMessage(
        provider_key=key,
        external_id=external_id,
        kind=MessageKind.TEXT,
        text=str(item.get("content") or ""),
        occurred_at=_time(item.get("send_time")),
        raw=json.dumps(item, ensure_ascii=False),
        payload=payload,
        contact_hints=hints,
    )


def parse_push(body: bytes) -> Sequence[Inbound]:
    """Every item of one push, receipts and replies alike (same URL may serve both)."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedPayload("Aliyun push is not JSON") from None
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list):
        raise MalformedPayload("Aliyun push must be a JSON array")
    items: list[Inbound] = []
    for item in data:
        if not isinstance(item, Mapping):
            raise MalformedPayload("Aliyun push items must be objects")
        if "content" in item:
            items.append(parse_reply(item))
        elif "biz_id" in item or "err_code" in item or "success" in item:
            items.append(parse_report(item))
        else:
            raise MalformedPayload("Aliyun push item is neither SmsReport nor SmsUp")
    return items
