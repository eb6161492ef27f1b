"""The `sms.twilio` adapter: one per Twilio account (+ sender number or Messaging Service)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any

import aiohttp

from channels.base import BadSignature, ChannelContext, ConnectionCheck, RawRequest, RawResponse
from channels.registry import AdapterSpec
from channels.sms.gateway import NotSent, SmsGatewayAdapter, SmsRequest
from conversations.types import AccountRef, ChannelRules, Inbound, SendResult

from .config_check import DEFAULT_ENDPOINT, KIND, TwilioConfig, load_config
from .inbound import EMPTY_TWIML, form_params, parse_webhook
from .outbound import find_sent, lookup_query, messages_path, send_form, send_result
from .signing import algorithm_of, is_valid

RULES = ChannelRules(auto_reply=True, marketing=True)


class TwilioSmsAdapter(SmsGatewayAdapter):
    kind = KIND
    rules = RULES
    free_text = True

    def __init__(self, account: AccountRef, ctx: ChannelContext, **kw: Any) -> None:
        self.config: TwilioConfig = load_config(account)
        super().__init__(account, ctx, self.config.sms, **kw)

    async def _verify_signature(self, request: RawRequest) -> None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        signature = headers.get("x-twilio-signature", "")
        settings = headers.get("x-twilio-webhooks-signature-settings")
        secret = self.config.auth_token
        if settings:
            if not self.config.webhook_shared_key:
                raise BadSignature("SharedKey-signed webhook but no webhook_shared_key configured")
            secret = self.config.webhook_shared_key
        if not is_valid(
            secret, request.url, form_params(request), signature, algorithm_of(settings)
        ):
            raise BadSignature("X-Twilio-Signature does not match")

    def parse(self, request: RawRequest) -> Sequence[Inbound]:
        return parse_webhook(request)

    def acknowledge(self, request: RawRequest, stored: Sequence[Inbound]) -> RawResponse:
        return RawResponse(200, EMPTY_TWIML, "text/xml")

    def _auth(self) -> dict[str, str]:
        pair = f"{self.config.account_sid}:{self.config.auth_token}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}

    async def _submit(self, request: SmsRequest) -> SendResult:
        url = self.api_base(DEFAULT_ENDPOINT) + messages_path(self.config)
        try:
            async with self.ctx.http.post(
                url, data=send_form(request, self.config), headers=self._auth()
            ) as resp:
                status, text = resp.status, await resp.text()
        except aiohttp.ClientConnectorError as exc:
            raise NotSent(str(exc)) from exc
        try:
            body = json.loads(text)
        except json.JSONDecodeError:
            body = {}
        return send_result(status, body if isinstance(body, dict) else {})

    async def _lookup(self, request: SmsRequest, since: float) -> SendResult | None:
        url = self.api_base(DEFAULT_ENDPOINT) + messages_path(self.config)
        query = lookup_query(request, self.config, since)
        try:
            async with self.ctx.http.get(url, params=query, headers=self._auth()) as resp:
                body = await resp.json(content_type=None)
        except aiohttp.ClientConnectorError as exc:
            raise NotSent(str(exc)) from exc
        return find_sent(body if isinstance(body, dict) else {}, request)

    async def check_connection(self) -> ConnectionCheck:
        url = (
            f"{self.api_base(DEFAULT_ENDPOINT)}/2010-04-01/Accounts/{self.config.account_sid}.json"
        )
        try:
            async with self.ctx.http.get(url, headers=self._auth()) as resp:
                ok = resp.status == 200
        except (aiohttp.ClientError, TimeoutError) as exc:
            return ConnectionCheck(False, f"cannot reach Twilio: {exc}")
        return ConnectionCheck(
            ok, "Twilio reachable, credentials valid" if ok else "Twilio rejected the credentials"
        )


def build(account: AccountRef, ctx: ChannelContext) -> TwilioSmsAdapter:
    return TwilioSmsAdapter(account, ctx)


SPECS = [
    AdapterSpec(
        kind=KIND, factory=build, rules=RULES, label_zh="Twilio 短信", label_en="Twilio SMS"
    )
]
