"""WeCom self-built app (自建应用) adapter: callbacks from staff and system events in,
app messages (应用消息) to staff out.

Customers' own chats never arrive here (issue 11): they come through 微信客服 or the
message archive, which are account kinds of their own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

import aiohttp

from channels.base import (
    BadSignature,
    ChannelContext,
    ConnectionCheck,
    MalformedPayload,
    PayloadTooLarge,
    RawRequest,
    RawResponse,
)
from channels.registry import AdapterSpec
from conversations.types import (
    AccountRef,
    ChannelRules,
    Inbound,
    MessageKind,
    Outbound,
    SendOutcome,
    SendResult,
)

from .api import DEFAULT_BASE, WeComApi
from .crypto import WeComCrypto, WeComCryptoError
from .errors import WeComApiError
from .inbound import parse_xml, to_inbound

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024  # real callbacks are a few KB
MAX_TEXT_BYTES = 2048  # message/send text limit
# per member per app: 30/min and 1,000/h; WeCom silently DROPS the excess (doc 90236)
MEMBER_PER_MINUTE = 30
MEMBER_PER_HOUR = 1000


class WeComAppAdapter:
    kind: ClassVar[str] = "wecom.app"
    rules: ClassVar[ChannelRules] = ChannelRules(
        auto_reply=True, max_text_bytes=MAX_TEXT_BYTES, marketing=False
    )

    def __init__(self, account: AccountRef, ctx: ChannelContext) -> None:
        self.account = account
        self.ctx = ctx
        cfg = account.config
        self.corp_id = str(cfg["corp_id"])
        self.agent_id = int(cfg["agent_id"])
        self.crypto = WeComCrypto(
            account.secrets["token"], account.secrets["encoding_aes_key"], self.corp_id
        )
        # sandbox accounts talk to the built-in simulator, wherever it listens this run
        sandbox_base = ctx.api_base_overrides.get("wecom") if cfg.get("sandbox") else None
        base = str(cfg.get("api_base") or sandbox_base or DEFAULT_BASE)
        self._last: tuple[RawRequest, bytes] | None = None
        self.api = WeComApi(
            ctx.http,
            ctx.state,
            corp_id=self.corp_id,
            secret=account.secrets["secret"],
            base_url=base,
        )

    # ---- inbound

    def _envelope(self, request: RawRequest) -> tuple[str, str, str, str]:
        q = request.query
        missing = [k for k in ("msg_signature", "timestamp", "nonce") if not q.get(k)]
        if missing:
            raise BadSignature(f"missing query parameters: {', '.join(missing)}")
        if len(request.body) > MAX_BODY:
            raise PayloadTooLarge(f"callback body of {len(request.body)} bytes")
        encrypt = parse_xml(request.body).get("Encrypt", "")
        if not encrypt:
            raise MalformedPayload("callback has no <Encrypt>")
        return q["msg_signature"], q["timestamp"], q["nonce"], encrypt

    def _decrypt(self, request: RawRequest) -> bytes:
        # verify() then parse() see the same request: decrypt it once (still pure)
        if self._last is not None and self._last[0] is request:
            return self._last[1]
        plain = self._decrypt_uncached(request)
        self._last = (request, plain)
        return plain

    def _decrypt_uncached(self, request: RawRequest) -> bytes:
        sig, ts, nonce, encrypt = self._envelope(request)
        try:
            return self.crypto.decrypt_checked(sig, ts, nonce, encrypt)
        except WeComCryptoError as exc:
            if exc.code == -40001:
                raise BadSignature(str(exc)) from exc
            raise MalformedPayload(f"undecryptable callback ({exc.code}): {exc}") from exc

    async def verify(self, request: RawRequest) -> None:
        self._decrypt(request)

    def parse(self, request: RawRequest) -> Sequence[Inbound]:
        return [to_inbound(self._decrypt(request))]

    def acknowledge(self, request: RawRequest, stored: Sequence[Inbound]) -> RawResponse:
        # empty 200: we answer later through the API (passive replies are optional)
        return RawResponse(status=200, body=b"")

    async def handshake(self, request: RawRequest) -> RawResponse:
        """GET URL verification: answer the decrypted echostr, bare (no quotes/BOM/newline)."""
        q = request.query
        if not all(q.get(k) for k in ("msg_signature", "timestamp", "nonce", "echostr")):
            raise BadSignature("URL verification without msg_signature/timestamp/nonce/echostr")
        try:
            plain = self.crypto.decrypt_checked(
                q["msg_signature"], q["timestamp"], q["nonce"], q["echostr"]
            )
        except WeComCryptoError as exc:
            if exc.code == -40001:
                raise BadSignature(str(exc)) from exc
            raise MalformedPayload(str(exc)) from exc
        return RawResponse(status=200, body=plain, content_type="text/plain")

    # ---- outbound

    async def send(self, message: Outbound) -> SendResult:
        waits = [
            await self.ctx.state.take(
                f"wecom:member:{self.corp_id}:{self.agent_id}:{message.recipient}:min",
                rate=MEMBER_PER_MINUTE / 60,
                burst=MEMBER_PER_MINUTE,
            ),
            await self.ctx.state.take(
                f"wecom:member:{self.corp_id}:{self.agent_id}:{message.recipient}:hour",
                rate=MEMBER_PER_HOUR / 3600,
                burst=MEMBER_PER_HOUR,
            ),
        ]
        if max(waits) > 0:
            # throttle BEFORE sending: WeCom would silently drop the excess
            return SendResult(
                SendOutcome.RETRY,
                reason="per-member limit (30/min, 1000/h) reached; deferred",
                retry_after=timedelta(seconds=max(waits)),
            )
        body: dict[str, Any] = {
            "touser": message.recipient,
            "agentid": self.agent_id,
            "enable_duplicate_check": 1,  # a retried send within 30 min is not shown twice
            "duplicate_check_interval": 1800,
        }
        if message.kind == MessageKind.TEXT:
            text = message.text
            if len(text.encode()) > MAX_TEXT_BYTES:
                return SendResult(
                    SendOutcome.FAILED,
                    error_code="text_too_long",
                    reason=f"文本超过 {MAX_TEXT_BYTES} 字节 (text over {MAX_TEXT_BYTES} bytes)",
                )
            body.update(msgtype="text", text={"content": text})
        elif message.kind == MessageKind.RICH:
            body.update(msgtype="markdown", markdown={"content": message.text})
        else:
            return SendResult(
                SendOutcome.FAILED,
                error_code="unsupported_kind",
                reason=f"app messages of kind {message.kind} are not supported",
            )
        try:
            data = await self.api.call("POST", "/cgi-bin/message/send", body=body)
        except WeComApiError as exc:
            return SendResult(
                exc.outcome,
                error_code=str(exc.errcode),
                reason=exc.readable,
                retry_after=exc.retry_after,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            # message/send has no idempotency key, but enable_duplicate_check makes a
            # retry of the same content harmless for 30 minutes
            return SendResult(
                SendOutcome.RETRY, error_code="network", reason=str(exc) or type(exc).__name__
            )
        if data.get("invaliduser"):
            return SendResult(
                SendOutcome.FAILED,
                error_code="invaliduser",
                reason=f"无效的成员: {data['invaliduser']}",
            )
        return SendResult.sent(str(data.get("msgid") or "") or None)

    async def check_connection(self) -> ConnectionCheck:
        try:
            await self.api.access_token(force=True)
        except WeComApiError as exc:
            return ConnectionCheck(False, exc.readable, {"errcode": exc.errcode})
        except (aiohttp.ClientError, TimeoutError) as exc:
            return ConnectionCheck(False, f"无法连接企业微信 API (cannot reach WeCom API): {exc}")
        return ConnectionCheck(True, "连接正常 (connected)")


SPECS = [
    AdapterSpec(
        kind=WeComAppAdapter.kind,
        factory=WeComAppAdapter,
        rules=WeComAppAdapter.rules,
        label_zh="企业微信自建应用",
        label_en="WeCom self-built app",
    )
]
