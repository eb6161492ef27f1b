"""Aliyun SendSms through the simulator: signing, idempotency, validation, error mapping."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from channels.base import ChannelContext
from channels.sms.aliyun.adapter import AliyunSmsAdapter
from channels.sms.aliyun.errors import SEND_ERRORS
from channels.sms.aliyun.simulator import AliyunSimulator, simulated_account
from conversations.types import MessageKind, Outbound, Purpose, SendOutcome

PHONE = "+8613800138000"


@pytest.fixture
async def sim() -> AsyncIterator[AliyunSimulator]:
    async with AliyunSimulator() as s:
        yield s


def adapter_for(sim: AliyunSimulator, ctx: ChannelContext, **config: Any) -> AliyunSmsAdapter:
    return AliyunSmsAdapter(simulated_account(sim, **config), ctx)


def outbound(
    adapter: AliyunSmsAdapter,
    key: str = "outbox-1",
    *,
    template: str | None = "SMS_100001",
    params: dict[str, Any] | None = None,
    text: str = "",
    purpose: Purpose = Purpose.REPLY,
    recipient: str = "13800138000",
) -> Outbound:
    payload: dict[str, Any] = {}
    if template is not None:
        payload = {"template": template, "params": {"order": "A1"} if params is None else params}
    return Outbound(
        key=key,
        account=adapter.account,
        recipient=recipient,
        kind=MessageKind.TEXT,
        text=text,
        purpose=purpose,
        payload=payload,
    )


async def test_send_puts_the_outbox_key_in_out_id(
    sim: AliyunSimulator, ctx: ChannelContext
) -> None:
    adapter = adapter_for(sim, ctx)
    result = await adapter.send(outbound(adapter))
    assert result.outcome == SendOutcome.SENT
    assert sim.sent[0].key == "outbox-1"
    assert result.provider_message_id == sim.sent[0].message_id
    assert sim.sent[0].text == "【测试签名】您的订单A1已发货，请注意查收"


async def test_rpc_signing_option_is_accepted(sim: AliyunSimulator, ctx: ChannelContext) -> None:
    adapter = adapter_for(sim, ctx, signature_version="rpc")
    assert (await adapter.send(outbound(adapter))).outcome == SendOutcome.SENT


async def test_same_outbox_key_reaches_the_gateway_once(
    sim: AliyunSimulator, ctx: ChannelContext
) -> None:
    adapter = adapter_for(sim, ctx)
    first = await adapter.send(outbound(adapter))
    second = await adapter.send(outbound(adapter))
    assert second.outcome == SendOutcome.SENT
    assert second.provider_message_id == first.provider_message_id
    assert sim.count_for(PHONE) == 1


async def test_wrong_secret_is_a_permanent_failure(
    sim: AliyunSimulator, ctx: ChannelContext
) -> None:
    account = simulated_account(sim)
    account = type(account)(**{**account.__dict__, "secrets": {"access_key_secret": "wrong"}})
    result = await AliyunSmsAdapter(account, ctx).send(outbound(adapter_for(sim, ctx)))
    assert result.outcome == SendOutcome.FAILED
    assert result.error_code == "SignatureDoesNotMatch"
    assert sim.sent == []


@pytest.mark.parametrize("code", sorted(c for c in SEND_ERRORS if not c.endswith(".")))
async def test_every_gateway_error_maps_to_its_outcome(
    code: str, sim: AliyunSimulator, ctx: ChannelContext
) -> None:
    sim.fail_next(code, "触发天级流控Permits:50")
    result = await adapter_for(sim, ctx).send(outbound(adapter_for(sim, ctx)))
    assert result.outcome == SEND_ERRORS[code].outcome
    assert result.error_code == code and result.reason


async def test_minute_flow_control_is_retried_after_a_minute(
    sim: AliyunSimulator, ctx: ChannelContext
) -> None:
    sim.fail_next("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")
    result = await adapter_for(sim, ctx).send(outbound(adapter_for(sim, ctx)))
    assert result.outcome == SendOutcome.RETRY
    assert result.retry_after is not None and result.retry_after.total_seconds() == 60


async def test_api_throttling_is_retried(sim: AliyunSimulator, ctx: ChannelContext) -> None:
    sim.fail_next("Throttling.User", "Request was denied due to user flow control.", 400)
    result = await adapter_for(sim, ctx).send(outbound(adapter_for(sim, ctx)))
    assert result.outcome == SendOutcome.RETRY


async def test_failed_send_may_be_sent_again(sim: AliyunSimulator, ctx: ChannelContext) -> None:
    adapter = adapter_for(sim, ctx)
    sim.fail_next("isp.SYSTEM_ERROR")
    assert (await adapter.send(outbound(adapter))).outcome == SendOutcome.RETRY
    assert (await adapter.send(outbound(adapter))).outcome == SendOutcome.SENT
    assert sim.count_for(PHONE) == 1


async def test_personalised_marketing_template_is_refused_before_sending(
    sim: AliyunSimulator, ctx: ChannelContext
) -> None:
    adapter = adapter_for(
        sim,
        ctx,
        templates=[{"code": "SMS_9", "kind": "marketing", "text": "${name}您好，全场五折"}],
        free_text_template=None,
    )
    message = outbound(adapter, template="SMS_9", params={"name": "王"}, purpose=Purpose.MARKETING)
    result = await adapter.send(message)
    assert result.outcome == SendOutcome.FAILED
    assert result.error_code == "sms.template.marketing_variables"
    assert sim.requests == 0


async def test_missing_template_parameter_is_refused_before_sending(
    sim: AliyunSimulator, ctx: ChannelContext
) -> None:
    adapter = adapter_for(sim, ctx)
    result = await adapter.send(outbound(adapter, params={}))
    assert result.outcome == SendOutcome.FAILED
    assert result.error_code == "sms.template.missing_param"
    assert sim.requests == 0


async def test_number_parameter_is_refused_before_sending(
    sim: AliyunSimulator, ctx: ChannelContext
) -> None:
    adapter = adapter_for(sim, ctx)
    result = await adapter.send(outbound(adapter, params={"order": 12}))
    assert result.error_code == "sms.template.param_type"
    assert sim.requests == 0


async def test_invalid_number_is_refused_with_the_reason(
    sim: AliyunSimulator, ctx: ChannelContext
) -> None:
    adapter = adapter_for(sim, ctx)
    result = await adapter.send(outbound(adapter, recipient="1380013800"))
    assert result.outcome == SendOutcome.FAILED
    assert result.error_code == "invalid_phone" and "digits" in (result.reason or "")
    assert sim.requests == 0


async def test_free_text_goes_through_the_free_text_template(
    sim: AliyunSimulator, ctx: ChannelContext
) -> None:
    adapter = adapter_for(sim, ctx)
    result = await adapter.send(outbound(adapter, template=None, text="王先生您好，样品已寄出"))
    assert result.outcome == SendOutcome.SENT
    assert sim.sent[0].text == "【测试签名】王先生您好，样品已寄出"


async def test_free_text_without_a_carrier_template_is_refused(
    sim: AliyunSimulator, ctx: ChannelContext
) -> None:
    adapter = adapter_for(sim, ctx, free_text_template=None)
    result = await adapter.send(outbound(adapter, template=None, text="你好"))
    assert result.error_code == "sms.template.required"


async def test_account_rate_limit_defers_when_the_bucket_is_empty(
    sim: AliyunSimulator, ctx: ChannelContext
) -> None:
    adapter = adapter_for(sim, ctx, rate_limit={"per_second": 0.01, "burst": 1, "max_wait": 0})
    assert (await adapter.send(outbound(adapter, "k1"))).outcome == SendOutcome.SENT
    second = await adapter.send(outbound(adapter, "k2"))
    assert second.outcome == SendOutcome.RETRY and second.error_code == "rate_limited"
    assert second.retry_after is not None and second.retry_after.total_seconds() > 1
    assert sim.count_for(PHONE) == 1
