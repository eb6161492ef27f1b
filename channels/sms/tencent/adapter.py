"""The `sms.tencent` adapter: one per Tencent Cloud SMS application (SmsSdkAppId)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import aiohttp

from channels.base import ChannelContext, ConnectionCheck, RawRequest, RawResponse
from channels.registry import AdapterSpec
from channels.sms.gateway import NotSent, SmsGatewayAdapter, SmsRequest
from conversations.types import AccountRef, ChannelRules, Inbound, SendResult

from .config_check import DEFAULT_ENDPOINT, KIND, TencentConfig, load_config
from .inbound import ACK, parse_push
from .outbound import find_sent, lookup_body, send_body, send_result, signed_request

RULES = ChannelRules(auto_reply=True, marketing=True)


class TencentSmsAdapter(SmsGatewayAdapter):
    kind = KIND
    rules = RULES
    free_text = False

    def __init__(self, account: AccountRef, ctx: ChannelContext, **kw: Any) -> None:
        self.config: TencentConfig = load_config(account)
        super().__init__(account, ctx, self.config.sms, **kw)

    def parse(self, request: RawRequest) -> Sequence[Inbound]:
        return parse_push(request.body)

    def acknowledge(self, request: RawRequest, stored: Sequence[Inbound]) -> RawResponse:
        return RawResponse(200, ACK, "application/json")

    async def _call(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        base = self.api_base(DEFAULT_ENDPOINT)
        payload, headers = signed_request(self.config, base, action, body, int(self._clock()))
        try:
            async with self.ctx.http.post(base + "/", data=payload, headers=headers) as resp:
                text = await resp.text()
        except aiohttp.ClientConnectorError as exc:
            raise NotSent(str(exc)) from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}

    async def _submit(self, request: SmsRequest) -> SendResult:
        return send_result(await self._call("SendSms", send_body(request, self.config)))

    async def _lookup(self, request: SmsRequest, since: float) -> SendResult | None:
        body = lookup_body(request, self.config, since, self._clock())
        return find_sent(await self._call("PullSmsSendStatusByPhoneNumber", body), request.key)

    async def check_connection(self) -> ConnectionCheck:
        try:
            data = await self._call("DescribeSmsSignList", {"SignIdSet": [], "International": 0})
        except (NotSent, aiohttp.ClientError, TimeoutError) as exc:
            return ConnectionCheck(False, f"无法连接腾讯云短信 (cannot reach Tencent SMS): {exc}")
        error = (data.get("Response") or {}).get("Error")
        if not error:
            return ConnectionCheck(True, "腾讯云短信连接正常 (Tencent SMS reachable, keys valid)")
        result = send_result(data)
        return ConnectionCheck(False, result.reason or "", {"code": error.get("Code")})


def build(account: AccountRef, ctx: ChannelContext) -> TencentSmsAdapter:
    return TencentSmsAdapter(account, ctx)


SPECS = [
    AdapterSpec(
        kind=KIND, factory=build, rules=RULES, label_zh="腾讯云短信", label_en="Tencent Cloud SMS"
    )
]
