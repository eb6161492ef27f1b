"""Parsing Aliyun SmsReport / SmsUp pushes (fixtures from the documentation pages)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.base import ChannelContext, Forbidden, MalformedPayload, RawRequest
from channels.sms.aliyun.adapter import AliyunSmsAdapter
from channels.sms.aliyun.simulator import AliyunSimulator, simulated_account
from conversations.types import InboundMessage, MessageStatus, StatusUpdate

FIXTURES = Path(__file__).parent / "fixtures"


def raw(body: bytes, remote: str = "127.0.0.1") -> RawRequest:
    return RawRequest("POST", "https://crm.example.com/cb", "/cb", {}, {}, body, remote)


@pytest.fixture
def adapter(ctx: ChannelContext) -> AliyunSmsAdapter:
    return AliyunSmsAdapter(simulated_account(AliyunSimulator()), ctx)


def test_receipt_becomes_a_status_update_keyed_by_out_id(adapter: AliyunSmsAdapter) -> None:
    (item,) = adapter.parse(raw((FIXTURES / "sms_report.json").read_bytes()))
    assert isinstance(item, StatusUpdate)
    assert item.status == MessageStatus.DELIVERED
    assert item.outbox_key == "1184585343"
    assert item.provider_message_id == "932702304080415357^0"
    assert item.occurred_at == datetime(2017, 2, 2, 14, 23, 24, tzinfo=UTC)


def test_failed_receipt_carries_code_and_reason(adapter: AliyunSmsAdapter) -> None:
    data = json.loads((FIXTURES / "sms_report.json").read_text())
    data[0].update(success=False, err_code="MK:0001", err_msg="空号")
    (item,) = adapter.parse(raw(json.dumps(data).encode()))
    assert isinstance(item, StatusUpdate)
    assert item.status == MessageStatus.FAILED
    assert item.error_code == "MK:0001" and item.reason == "MK:0001: 空号"


def test_reply_becomes_a_message_from_the_e164_number(adapter: AliyunSmsAdapter) -> None:
    (item,) = adapter.parse(raw((FIXTURES / "sms_up.json").read_bytes()))
    assert isinstance(item, InboundMessage)
    assert item.external_id == "+8613800138000"
    assert item.contact_hints == {"phone": "+8613800138000"}
    assert item.text == "退订" and item.provider_key == "up:1234567890"


def test_parsing_is_pure_and_repeatable(adapter: AliyunSmsAdapter) -> None:
    body = (FIXTURES / "sms_report.json").read_bytes() + b""
    assert adapter.parse(raw(body)) == adapter.parse(raw(body))


def test_reply_without_sequence_id_still_has_a_stable_key(adapter: AliyunSmsAdapter) -> None:
    data = json.loads((FIXTURES / "sms_up.json").read_text())
    del data[0]["sequence_id"]
    body = json.dumps(data).encode()
    assert adapter.parse(raw(body))[0].provider_key == adapter.parse(raw(body))[0].provider_key


def test_acknowledgement_is_code_zero(adapter: AliyunSmsAdapter) -> None:
    answer = adapter.acknowledge(raw(b"[]"), [])
    assert json.loads(answer.body)["code"] == 0


def test_non_json_push_is_malformed(adapter: AliyunSmsAdapter) -> None:
    with pytest.raises(MalformedPayload):
        adapter.parse(raw(b"<xml/>"))


async def test_push_from_outside_the_ip_allowlist_is_forbidden(ctx: ChannelContext) -> None:
    account = simulated_account(AliyunSimulator(), ip_allowlist=["100.100.0.0/16"])
    adapter = AliyunSmsAdapter(account, ctx)
    await adapter.verify(raw(b"[]", remote="100.100.3.4"))
    with pytest.raises(Forbidden):
        await adapter.verify(raw(b"[]", remote="203.0.113.9"))
