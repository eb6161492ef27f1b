"""微信客服 sync_msg items → Inbound values (doc 94670). Pure.

origin 3 = the customer wrote; 5 = a human servicer answered from the WeCom client
(stored as our outbound, attributed to the servicer); 4 = a system event. sync_msg never
returns what the API sent, so nothing here can double our own replies.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from conversations.types import (
    Direction,
    Inbound,
    InboundEvent,
    InboundMessage,
    MessageKind,
    MessageStatus,
    StatusUpdate,
)

KINDS: Mapping[str, MessageKind] = {
    "text": MessageKind.TEXT,
    "image": MessageKind.IMAGE,
    "voice": MessageKind.VOICE,
    "video": MessageKind.VIDEO,
    "file": MessageKind.FILE,
    "location": MessageKind.LOCATION,
    "link": MessageKind.LINK,
    "miniprogram": MessageKind.RICH,
    "msgmenu": MessageKind.RICH,
    "business_card": MessageKind.RICH,
    "channels_shop_product": MessageKind.RICH,
    "channels": MessageKind.RICH,
}

# sync_msg item types with a documented shape (doc 94670); a meta-test wants a fixture each
DOCUMENTED_KF = frozenset(
    [f"message.{t}" for t in ("text", "image", "voice", "video", "file", "location", "link")]
    + ["servicer.text"]
    + [f"wecom.kf.{e}" for e in ("enter_session", "msg_send_fail", "session_status_change")]
)

# msg_send_fail fail_type (doc 94670): why a message we sent did not reach the customer
FAIL_TYPES: Mapping[int, str] = {
    0: "未知原因 (unknown)",
    1: "客服账号已删除 (kf account deleted)",
    2: "应用已关闭 (app closed)",
    4: "会话已过期，超过 48 小时 (session expired: over 48 h)",
    5: "会话已关闭 (session closed)",
    6: "超过 5 条限制 (over the 5-message limit)",
    7: "未绑定视频号 (no channels account)",
    8: "主体未验证 (entity not verified)",
    9: "未绑定视频号 (no channels account)",
    10: "用户拒收 (customer refuses messages)",
    11: "企业未有成员登录企业微信 App (no member logged in)",
    12: "发送的消息为视频号商品消息，但该商品已下架 (product withdrawn)",
}


def _when(item: Mapping[str, Any]) -> datetime:
    try:
        return datetime.fromtimestamp(int(item.get("send_time", 0)), UTC)
    except (TypeError, ValueError, OverflowError):
        return datetime.fromtimestamp(0, UTC)


def text_of(kind: MessageKind, msgtype: str, part: Mapping[str, Any]) -> str:
    if kind == MessageKind.TEXT:
        return str(part.get("content", ""))
    if kind == MessageKind.LOCATION:
        return str(
            part.get("name")
            or part.get("address")
            or f"{part.get('latitude', '')},{part.get('longitude', '')}"
        )
    if kind == MessageKind.LINK:
        return f"{part.get('title', '')} {part.get('url', '')}".strip()
    if kind == MessageKind.RICH:
        return str(part.get("title") or part.get("head_content") or f"[{msgtype}]")
    return ""


def to_inbound(item: Mapping[str, Any]) -> Sequence[Inbound]:
    """One sync_msg item → its Inbound values."""
    raw = json.dumps(item, ensure_ascii=False, sort_keys=True)
    msgid = str(item.get("msgid", ""))
    key = f"kf:{msgid}"
    msgtype = str(item.get("msgtype", ""))
    if msgtype == "event":
        event = dict(item.get("event") or {})
        event_type = str(event.get("event_type", "unknown"))
        ext = str(event.get("external_userid") or "") or None
        out: list[Inbound] = [
            InboundEvent(
                provider_key=key,
                event_type=f"wecom.kf.{event_type}",
                occurred_at=_when(item),
                payload=event,
                raw=raw,
                external_id=ext,
                staff_external_id=str(
                    event.get("servicer_userid") or event.get("new_servicer_userid") or ""
                )
                or None,
            )
        ]
        if event_type == "msg_send_fail" and event.get("fail_msgid"):
            fail_type = int(event.get("fail_type", 0))
            out.append(
                StatusUpdate(
                    provider_key=f"{key}:status",
                    status=MessageStatus.FAILED,
                    occurred_at=_when(item),
                    provider_message_id=str(event["fail_msgid"]),
                    error_code=f"kf_fail_{fail_type}",
                    reason=FAIL_TYPES.get(fail_type, f"fail_type {fail_type}"),
                    raw=raw,
                )
            )
        return out
    kind = KINDS.get(msgtype, MessageKind.UNKNOWN)
    part = dict(item.get(msgtype) or {})
    origin = int(item.get("origin", 3))
    ext = str(item.get("external_userid", ""))
    servicer = str(item.get("servicer_userid") or "") or None
    return [
        InboundMessage(
            provider_key=key,
            external_id=ext or "unknown",
            kind=kind,
            text=text_of(kind, msgtype, part),
            occurred_at=_when(item),
            raw=raw,
            payload=dict(item),
            direction=Direction.OUTBOUND if origin == 5 else Direction.INBOUND,
            staff_external_id=servicer,
            # the same person as the 客户联系 external contact: link the identities
            contact_hints={"external_userid": ext} if ext else {},
            provider_message_id=msgid or None,
        )
    ]
