"""The `sms.aliyun` adapter: one per Aliyun SMS account row."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp

from channels.base import ChannelContext, ConnectionCheck, RawRequest, RawResponse
from channels.registry import AdapterSpec
from channels.sms.gateway import NotSent, SmsGatewayAdapter, SmsRequest
from conversations.types import AccountRef, ChannelRules, Inbound, SendOutcome, SendResult

from .config_check import DEFAULT_ENDPOINT, KIND, AliyunConfig, load_config
from .inbound import ACK, parse_push
from .outbound import find_sent, query_params, send_params, send_result, signed_request

RULES = ChannelRules(auto_reply=True, marketing=True)


class AliyunSmsAdapter(SmsGatewayAdapter):
    kind = KIND
    rules = RULES
    free_text = False

    def __init__(self, account: AccountRef, ctx: ChannelContext, **kw: Any) -> None:
        self.config: AliyunConfig = load_config(account)
        super().__init__(account, ctx, self.config.sms, **kw)

    def parse(self, request: RawRequest) -> Sequence[Inbound]:
        return parse_push(request.body)

    def acknowledge(self, request: RawRequest, stored: Sequence[Inbound]) -> RawResponse:
        return RawResponse(200, ACK, "application/json")

    async def _call(self, action: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        base = self.api_base(DEFAULT_ENDPOINT)
        now = datetime.fromtimestamp(self._clock(), UTC)
        url, query, headers = signed_request(self.config, base, action, params, now)
        try:
            async with self.ctx.http.post(url, params=query, headers=headers, data=b"") as resp:
                text = await resp.text()
                status = resp.status
        except aiohttp.ClientConnectorError as exc:
            raise NotSent(str(exc)) from exc
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            body = {}
        return status, body if isinstance(body, dict) else {}

    async def _submit(self, request: SmsRequest) -> SendResult:
        status, body = await self._call("SendSms", send_params(request, self.config))
        if status >= 500 and not body.get("Code"):
            return SendResult(
                SendOutcome.UNKNOWN, error_code=f"http_{status}", reason="gateway error page"
            )
        return send_result(status, body)

    async def _lookup(self, request: SmsRequest, since: float) -> SendResult | None:
        asked: set[str] = set()
        # SendDate is a China-time day; a send near midnight may sit on either side
        for moment in (since, self._clock()):
            params = query_params(request.phone, datetime.fromtimestamp(moment, UTC))
            if params["SendDate"] in asked:
                continue
            asked.add(params["SendDate"])
            _, body = await self._call("QuerySendDetails", params)
            found = find_sent(body, request.key)
            if found is not None:
                return found
        return None

    async def check_connection(self) -> ConnectionCheck:
        """Signs a harmless look-up; a bad key or secret shows up as the gateway's code."""
        try:
            status, body = await self._call(
                "QuerySendDetails", query_params("+8613800138000", datetime.now(UTC))
            )
        except (NotSent, aiohttp.ClientError, TimeoutError) as exc:
            return ConnectionCheck(False, f"无法连接阿里云短信 (cannot reach Aliyun SMS): {exc}")
        code = str(body.get("Code", ""))
        if status == 200 and code == "OK":
            return ConnectionCheck(True, "阿里云短信连接正常 (Aliyun SMS reachable, keys valid)")
        result = send_result(status, body)
        return ConnectionCheck(False, result.reason or code, {"code": code})


def build(account: AccountRef, ctx: ChannelContext) -> AliyunSmsAdapter:
    return AliyunSmsAdapter(account, ctx)


SPECS = [
    AdapterSpec(
        kind=KIND,
        factory=build,
        rules=RULES,
        label_zh="阿里云短信",
        label_en="Alibaba Cloud SMS",
    )
]
