"""Tencent Cloud SMS: TC3 signing KATs, SendSms via the simulator, callbacks, store flow."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import func, select

from channels.base import ChannelContext, MalformedPayload, RawRequest
from channels.sms.tencent.adapter import TencentSmsAdapter
from channels.sms.tencent.errors import SEND_ERRORS
from channels.sms.tencent.signing import tc3_signature, tc3_string_to_sign
from channels.sms.tencent.simulator import TencentSimulator, simulated_account
from conversations import consent
from conversations.db import Database
from conversations.models import OutboxItem
from conversations.types import (
    MessageKind,
    MessageStatus,
    Outbound,
    Purpose,
    SendOutcome,
    StatusUpdate,
)
from tests.channels.sms.harness import (
    CallbackHarness,
    create_account,
    dispatch,
    messages_of,
    queue_text,
)

PHONE = "+8613800138000"
sdk_sign = pytest.importorskip("tencentcloud.common.sign")

# "签名方法 v3" worked example (CVM DescribeInstances), cloud.tencent.com/document/api/213/30654
DOC_PAYLOAD = (
    b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
)


def test_tc3_matches_the_documented_example() -> None:
    to_sign = tc3_string_to_sign("cvm.tencentcloudapi.com", DOC_PAYLOAD, 1551113065, "cvm")
    assert to_sign.endswith("5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031")
    assert tc3_signature("Gu5t9xGARNpq86cd98joQYCN3*******", 1551113065, "cvm", to_sign) == (
        "2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
    )


@pytest.mark.parametrize("key", ["k", "秘密/key+=", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"])
def test_tc3_agrees_with_the_sdk(key: str) -> None:
    to_sign = tc3_string_to_sign(
        "sms.tencentcloudapi.com", b'{"a":"\xe4\xbd\xa0"}', 1700000000, "sms"
    )
    assert tc3_signature(key, 1700000000, "sms", to_sign) == sdk_sign.Sign.sign_tc3(
        key, "2023-11-14", "sms", to_sign
    )


@pytest.fixture
async def sim() -> AsyncIterator[TencentSimulator]:
    async with TencentSimulator() as s:
        yield s


def message(adapter: TencentSmsAdapter, key: str = "k1", **payload: Any) -> Outbound:
    return Outbound(
        key=key, account=adapter.account, recipient="13800138000", kind=MessageKind.TEXT, text="",
        purpose=Purpose.REPLY, payload=payload or {"template": "1100001", "params": {"1": "A1"}},
    )  # fmt: skip


async def test_send_carries_the_key_in_session_context(
    sim: TencentSimulator, ctx: ChannelContext
) -> None:
    adapter = TencentSmsAdapter(simulated_account(sim), ctx)
    result = await adapter.send(message(adapter))
    assert (
        result.outcome == SendOutcome.SENT and result.provider_message_id == sim.sent[0].message_id
    )
    assert (
        sim.sent[0].key == "k1" and sim.sent[0].text == "【测试签名】您的订单A1已发货，请注意查收"
    )
    assert (await adapter.send(message(adapter))).outcome == SendOutcome.SENT
    assert sim.count_for(PHONE) == 1


async def test_wrong_secret_is_refused(sim: TencentSimulator, ctx: ChannelContext) -> None:
    account = replace(simulated_account(sim), secrets={"secret_key": "wrong"})
    adapter = TencentSmsAdapter(account, ctx)
    result = await adapter.send(message(adapter))
    assert (
        result.outcome == SendOutcome.FAILED and result.error_code == "AuthFailure.SignatureFailure"
    )


@pytest.mark.parametrize("code", sorted(c for c in SEND_ERRORS if not c.endswith(".")))
async def test_every_gateway_error_maps_to_its_outcome(
    code: str, sim: TencentSimulator, ctx: ChannelContext
) -> None:
    adapter = TencentSmsAdapter(simulated_account(sim), ctx)
    sim.fail_next(code, "simulated")
    result = await adapter.send(message(adapter))
    assert (result.outcome, result.error_code) == (SEND_ERRORS[code].outcome, code)


async def test_marketing_template_without_the_r_suffix_is_refused(
    sim: TencentSimulator, ctx: ChannelContext
) -> None:
    account = simulated_account(
        sim,
        templates=[{"code": "9", "kind": "marketing", "text": "全场五折"}],
        free_text_template=None,
    )
    adapter = TencentSmsAdapter(account, ctx)
    result = await adapter.send(
        replace(message(adapter, template="9", params={}), purpose=Purpose.MARKETING)
    )
    assert result.error_code == "sms.template.marketing_suffix" and sim.requests == 0


def _raw(body: bytes) -> RawRequest:
    return RawRequest("POST", "https://crm.example.com/cb", "/cb", {}, {}, body, "127.0.0.1")


async def test_status_array_and_reply_object_parse(
    sim: TencentSimulator, ctx: ChannelContext
) -> None:
    adapter = TencentSmsAdapter(simulated_account(sim), ctx)
    status = json.dumps(
        [
            {
                "user_receive_time": "2015-10-17 08:03:04",
                "nationcode": "86",
                "mobile": "13800138000",
                "report_status": "FAIL",
                "errmsg": "MN:0017",
                "description": "号码黑名单",
                "sid": "x-1",
            }
        ]
    )
    (item,) = adapter.parse(_raw(status.encode()))
    assert isinstance(item, StatusUpdate) and item.status == MessageStatus.FAILED
    assert item.provider_message_id == "x-1" and item.reason == "MN:0017: 号码黑名单"
    reply = b'{"extend":"","mobile":"13800138000","nationcode":"86","sign":"s","text":"R","time":1445444947}'
    (msg,) = adapter.parse(_raw(reply))
    assert msg.external_id == PHONE  # type: ignore[union-attr]
    assert adapter.parse(_raw(reply)) == adapter.parse(_raw(reply))
    assert json.loads(adapter.acknowledge(_raw(reply), []).body) == {"result": 0, "errmsg": "OK"}
    with pytest.raises(MalformedPayload):
        adapter.parse(_raw(b'"nonsense"'))


async def test_send_receipt_reply_and_opt_out(
    db: Database, harness: CallbackHarness, sim: TencentSimulator, ctx: ChannelContext
) -> None:
    ref = simulated_account(sim)
    row = await create_account(db, ref, token="tok-tencent")
    adapter = TencentSmsAdapter(replace(ref, id=row.id), ctx)
    sim.callback_url = harness.add("sms.tencent", "tok-tencent", row.id, adapter)
    await queue_text(db, row, PHONE, "out-1", {"template": "1100001", "params": {"1": "A1"}})
    assert (await dispatch(db, adapter, adapter.account, "out-1")).outcome == SendOutcome.SENT
    await sim.push_receipt(sim.sent[0].message_id)
    await sim.push_reply(PHONE, "好的")
    await sim.push_reply(PHONE, "ＴＤ")
    messages = await messages_of(db, row.id)
    assert messages[0].status == "delivered"
    assert [m.text for m in messages if m.direction == "in"] == ["好的", "ＴＤ"]
    async with db.reading() as s:
        assert await consent.is_suppressed(s, channel="sms", address=PHONE, scope="测试签名")
        assert (
            await s.scalar(
                select(func.count())
                .select_from(OutboxItem)
                .where(OutboxItem.idempotency_key.like("opt_out:%"))
            )
            == 1
        )
