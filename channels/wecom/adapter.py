"""WeCom self-built app (自建应用) adapter: callbacks from staff and system events in,
app messages (应用消息) to staff out — text, markdown, textcard, image and file.

Customers' own chats never arrive here (issue 11): they come through 微信客服
(`wecom.kf`) or the message archive (`wecom.archive`), account kinds of their own;
客户联系 events have `wecom.contact`. `SPECS` lists all four kinds.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, ClassVar

import aiohttp

from channels.base import ChannelContext, ConnectionCheck
from channels.registry import AdapterSpec
from conversations.types import (
    AccountRef,
    ChannelRules,
    MessageKind,
    Outbound,
    SendOutcome,
    SendResult,
)

from .account import build_api, build_crypto
from .callback import CallbackEndpoint
from .errors import WeComApiError
from .media import download_via_api
from .outbound import MissingMedia, check_api, failed, media_id_for, result_of

log = logging.getLogger(__name__)

MAX_TEXT_BYTES = 2048  # message/send text limit
# per member per app: 30/min and 1,000/h; WeCom silently DROPS the excess (doc 90236).
# A bucket lets `burst + rate × window` through in any window, so both are chosen to
# keep that sum at the limit: 2 + 28/min × 1 min = 30; 20 + 980/h × 1 h = 1,000.
MEMBER_MINUTE = (28 / 60, 2.0)
MEMBER_HOUR = (980 / 3600, 20.0)


class WeComAppAdapter(CallbackEndpoint):
    kind: ClassVar[str] = "wecom.app"
    rules: ClassVar[ChannelRules] = ChannelRules(
        auto_reply=True, max_text_bytes=MAX_TEXT_BYTES, marketing=False
    )

    def __init__(self, account: AccountRef, ctx: ChannelContext) -> None:
        self.account = account
        self.ctx = ctx
        self.crypto = build_crypto(account)  # validates the settings first
        self.corp_id = str(account.config["corp_id"])
        self.agent_id = int(account.config["agent_id"])
        self.api = build_api(account, ctx)

    async def _member_throttle(self, member: str) -> float:
        """Seconds to wait before `member` may get another message (0 = go)."""
        base = f"wecom:member:{self.corp_id}:{self.agent_id}:{member}"
        minute = await self.ctx.state.take(base + ":min", *MEMBER_MINUTE)
        if minute > 0:
            return minute
        return await self.ctx.state.take(base + ":hour", *MEMBER_HOUR)

    async def _body(self, message: Outbound) -> dict[str, Any] | SendResult:
        body: dict[str, Any] = {
            "touser": message.recipient,
            "agentid": self.agent_id,
            "enable_duplicate_check": 1,  # a retried send within 30 min is not shown twice
            "duplicate_check_interval": 1800,
        }
        kind = message.kind
        if kind == MessageKind.TEXT:
            if len(message.text.encode()) > MAX_TEXT_BYTES:
                return failed(
                    "text_too_long",
                    f"文本超过 {MAX_TEXT_BYTES} 字节 (text over {MAX_TEXT_BYTES} bytes)",
                )
            body.update(msgtype="text", text={"content": message.text})
        elif kind == MessageKind.RICH and message.payload.get("card"):
            card = message.payload["card"]  # {"title", "description", "url", "btntxt"}
            body.update(
                msgtype="textcard",
                textcard={
                    "title": str(card.get("title", ""))[:128],
                    "description": str(card.get("description", message.text))[:512],
                    "url": str(card.get("url", "")),
                    "btntxt": str(card.get("btntxt", "详情")),
                },
            )
        elif kind == MessageKind.RICH:
            body.update(msgtype="markdown", markdown={"content": message.text})
        elif kind in (MessageKind.IMAGE, MessageKind.FILE):
            try:
                media_id = await media_id_for(self.api, self.ctx.media, message)
            except MissingMedia as exc:
                return failed("missing_media", str(exc))
            body.update(msgtype=kind.value, **{kind.value: {"media_id": media_id}})
        else:
            return failed("unsupported_kind", f"app messages of kind {kind} are not supported")
        return body

    async def send(self, message: Outbound) -> SendResult:
        wait = await self._member_throttle(message.recipient)
        if wait > 0:
            # throttle BEFORE sending: WeCom would silently drop the excess
            return SendResult(
                SendOutcome.RETRY,
                error_code="member_throttle",
                reason="per-member limit (30/min, 1000/h) reached; deferred",
                # at least a second: float rounding can leave a wait of 1e-12 s
                retry_after=timedelta(seconds=max(wait, 1.0)),
            )
        try:
            body = await self._body(message)
            if isinstance(body, SendResult):
                return body
            data = await self.api.call("POST", "/cgi-bin/message/send", body=body)
        except WeComApiError as exc:
            return result_of(exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # message/send has no idempotency key, but enable_duplicate_check makes a
            # retry of the same content harmless for 30 minutes
            return SendResult(
                SendOutcome.RETRY, error_code="network", reason=str(exc) or type(exc).__name__
            )
        if data.get("invaliduser"):
            return failed("invaliduser", f"无效的成员 (invalid member): {data['invaliduser']}")
        return SendResult.sent(str(data.get("msgid") or "") or None)

    async def download_media(self, ref: str) -> tuple[bytes, str]:
        """media/get for a received message's MediaId (media.MediaSource)."""
        return await download_via_api(self.api, ref)

    async def check_connection(self) -> ConnectionCheck:
        return await check_api(self.api)


def _specs() -> list[AdapterSpec]:
    from .archive.adapter import WeComArchiveAdapter
    from .contact import WeComContactAdapter
    from .kf import WeComKfAdapter

    def spec(adapter: Any, label_zh: str, label_en: str) -> AdapterSpec:
        return AdapterSpec(adapter.kind, adapter, adapter.rules, label_zh, label_en)

    return [
        spec(WeComAppAdapter, "企业微信自建应用", "WeCom self-built app"),
        spec(WeComKfAdapter, "微信客服", "WeChat Customer Service (kf)"),
        spec(WeComContactAdapter, "企业微信客户联系", "WeCom customer contact"),
        spec(WeComArchiveAdapter, "会话内容存档", "WeCom message archive"),
    ]


SPECS = _specs()
