"""One harness for every adapter (STYLE.md §2): a bad signature is rejected, parsing is
pure and repeatable, the same outbound key reaches the provider once, provider errors
map to a result kind with a readable reason, and no secret reaches the logs."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from channels.base import BadSignature, ChannelAdapter, ChannelContext, Forbidden, RawRequest
from channels.media import MediaStore
from channels.registry import default_registry
from channels.sms.aliyun.simulator import AliyunSimulator
from channels.sms.aliyun.simulator import simulated_account as aliyun_account
from channels.sms.tencent.simulator import TencentSimulator
from channels.sms.tencent.simulator import simulated_account as tencent_account
from channels.sms.twilio.signing import compute_signature
from channels.sms.twilio.simulator import TwilioSimulator
from channels.sms.twilio.simulator import simulated_account as twilio_account
from channels.state import MemoryState
from channels.wecom.simulator import WeComSimulator, new_app, sign_callback, text_message_xml
from conversations.types import AccountRef, MessageKind, Outbound, Purpose, SendOutcome


@dataclass
class Rig:
    account: AccountRef
    good_request: RawRequest
    tampered_request: RawRequest | None  # None: the provider does not sign (path token guards it)
    recipient: str
    delivered: Callable[[str], int]  # recipient → deliveries the provider accepted
    inject_error: Callable[[str], None] | None = None
    error_codes: list[str] = field(default_factory=list)
    secret_values: list[str] = field(default_factory=list)


@asynccontextmanager
async def wecom_app_rig() -> AsyncIterator[Rig]:
    sim = WeComSimulator()
    server = TestServer(sim.app(), host="127.0.0.1")
    await server.start_server()
    app = sim.add_app(new_app())
    sim.add_member(app.corp_id, "zhangsan")
    signed = sign_callback(app, text_message_xml(app, "zhangsan", "你好", msg_id=42))
    request = RawRequest("POST", "http://127.0.0.1/cb", "/cb", signed.query, {}, signed.body)
    try:
        yield Rig(
            account=AccountRef(
                1,
                "wecom.app",
                "app",
                {
                    "corp_id": app.corp_id,
                    "agent_id": app.agent_id,
                    "api_base": str(server.make_url("")).rstrip("/"),
                },
                {
                    "secret": app.secret,
                    "token": app.token,
                    "encoding_aes_key": app.encoding_aes_key,
                },
            ),
            good_request=request,
            tampered_request=replace(request, query={**signed.query, "msg_signature": "0" * 40}),
            recipient="zhangsan",
            delivered=lambda to: sum(1 for m in sim.sent if m.touser == to),
            secret_values=[app.secret, app.encoding_aes_key],
        )
    finally:
        await server.close()


def _json_request(body: Any) -> RawRequest:
    return RawRequest(
        "POST",
        "http://127.0.0.1/cb",
        "/cb",
        {},
        {"Content-Type": "application/json"},
        json.dumps(body, ensure_ascii=False).encode(),
        "127.0.0.1",
    )


@asynccontextmanager
async def aliyun_rig() -> AsyncIterator[Rig]:
    async with AliyunSimulator() as sim:
        yield Rig(
            account=aliyun_account(sim),
            good_request=_json_request([sim.reply_item("13800138000", "你好")]),
            tampered_request=None,
            recipient="+8613800138000",
            delivered=sim.count_for,
            inject_error=sim.fail_next,
            error_codes=[
                "isv.BUSINESS_LIMIT_CONTROL",
                "isv.AMOUNT_NOT_ENOUGH",
                "isv.MOBILE_NUMBER_ILLEGAL",
            ],
            secret_values=[sim.access_key_secret],
        )


@asynccontextmanager
async def tencent_rig() -> AsyncIterator[Rig]:
    async with TencentSimulator() as sim:
        yield Rig(
            account=tencent_account(sim),
            good_request=_json_request(sim.reply_item("13800138000", "你好")),
            tampered_request=None,
            recipient="+8613800138000",
            delivered=sim.count_for,
            inject_error=sim.fail_next,
            error_codes=[
                "LimitExceeded.PhoneNumberDailyLimit",
                "FailedOperation.InsufficientBalanceInSmsPackage",
            ],
            secret_values=[sim.secret_key],
        )


@asynccontextmanager
async def twilio_rig() -> AsyncIterator[Rig]:
    async with TwilioSimulator() as sim:
        params = {
            "MessageSid": "SM1",
            "From": "+14155552671",
            "To": sim.from_number,
            "Body": "hello",
            "NumMedia": "0",
        }
        url = "https://crm.example.com/callbacks/sms.twilio/tok"
        body = urlencode(params).encode()
        sig = compute_signature(sim.auth_token, url, params.items())
        request = RawRequest(
            "POST",
            url,
            "/callbacks/sms.twilio/tok",
            {},
            {"X-Twilio-Signature": sig, "Content-Type": "application/x-www-form-urlencoded"},
            body,
        )
        yield Rig(
            account=twilio_account(sim),
            good_request=request,
            tampered_request=replace(
                request, headers={**request.headers, "X-Twilio-Signature": "AAAA" + sig[4:]}
            ),
            recipient="+14155552671",
            delivered=sim.count_for,
            inject_error=sim.fail_next,
            error_codes=["21610", "20429"],
            secret_values=[sim.auth_token],
        )


RIGS: dict[str, Callable[[], Any]] = {
    "wecom.app": wecom_app_rig,
    "sms.aliyun": aliyun_rig,
    "sms.tencent": tencent_rig,
    "sms.twilio": twilio_rig,
}


# kinds whose adapters need real servers run the same checks in their own suites
COVERED_ELSEWHERE = {
    "email": "tests/channels/email: real Dovecot + SMTP (once-only send, bad MIME, loop guard)",
}


def test_every_registered_adapter_has_a_conformance_rig() -> None:
    assert sorted(default_registry().kinds()) == sorted([*RIGS, *COVERED_ELSEWHERE])


@pytest.fixture
async def ctx(tmp_path: Path) -> AsyncIterator[ChannelContext]:
    async with aiohttp.ClientSession() as http:
        yield ChannelContext(
            http=http,
            state=MemoryState(),
            media=MediaStore(tmp_path / "m"),
            public_url="http://127.0.0.1",
        )


def _adapter(rig: Rig, ctx: ChannelContext) -> ChannelAdapter:
    return default_registry().build(rig.account, ctx)


@pytest.mark.parametrize("kind", sorted(RIGS))
async def test_conformance(
    kind: str, ctx: ChannelContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with RIGS[kind]() as rig:
        adapter = _adapter(rig, ctx)
        assert isinstance(adapter, ChannelAdapter)

        # a good request verifies, and parsing it twice gives equal values (pure)
        await adapter.verify(rig.good_request)
        first = adapter.parse(rig.good_request)
        assert first and first == adapter.parse(rig.good_request)

        # a forged signature is refused
        if rig.tampered_request is not None:
            with pytest.raises((BadSignature, Forbidden)):
                await adapter.verify(rig.tampered_request)

        # the same outbound key twice reaches the provider once
        out = Outbound(
            key=f"conf-{secrets.token_hex(4)}",
            account=rig.account,
            recipient=rig.recipient,
            kind=MessageKind.TEXT,
            text="您好，这是一条测试消息",
            purpose=Purpose.REPLY,
        )
        results = [await adapter.send(out), await adapter.send(out)]
        assert results[0].outcome == SendOutcome.SENT, results[0]
        assert rig.delivered(rig.recipient) == 1

        # provider errors map to a result kind with a readable reason
        for code in rig.error_codes:
            assert rig.inject_error is not None
            rig.inject_error(code)
            result = await adapter.send(replace(out, key=f"err-{code}-{secrets.token_hex(3)}"))
            assert result.outcome in (SendOutcome.RETRY, SendOutcome.FAILED), (code, result)
            assert result.reason, code

    # the simulator's own access log is the provider's side, not ours
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    for value in rig.secret_values:
        assert value not in logged, f"a {kind} secret reached the logs"
