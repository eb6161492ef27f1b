"""Aliyun at the adapter+store level: send → receipt → reply → 退订 → suppressed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from sqlalchemy import func, select

from channels.base import ChannelContext
from channels.sms.aliyun.adapter import AliyunSmsAdapter
from channels.sms.aliyun.simulator import AliyunSimulator, simulated_account
from channels.state import MemoryState
from conversations import consent
from conversations.db import Database
from conversations.models import ChannelAccount, Message, OutboxItem
from conversations.types import SendOutcome
from tests.channels.sms.harness import (
    CallbackHarness,
    create_account,
    dispatch,
    messages_of,
    outbound_for,
    queue_text,
)

PHONE = "+8613800138000"
ORDER = {"template": "SMS_100001", "params": {"order": "A1"}}


@pytest.fixture
async def sim() -> AsyncIterator[AliyunSimulator]:
    async with AliyunSimulator() as s:
        yield s


async def _setup(
    db: Database,
    harness: CallbackHarness,
    sim: AliyunSimulator,
    ctx: ChannelContext,
    **config: object,
) -> tuple[AliyunSmsAdapter, ChannelAccount]:
    ref = simulated_account(sim, **config)
    row = await create_account(db, ref, token="tok-aliyun")
    adapter = AliyunSmsAdapter(replace(ref, id=row.id), ctx)
    sim.callback_url = harness.add("sms.aliyun", "tok-aliyun", row.id, adapter)
    return adapter, row


async def test_send_receipt_reply_and_opt_out(
    db: Database, harness: CallbackHarness, sim: AliyunSimulator, ctx: ChannelContext
) -> None:
    adapter, row = await _setup(db, harness, sim, ctx)
    await queue_text(db, row, PHONE, "out-1", ORDER)
    assert (await dispatch(db, adapter, adapter.account, "out-1")).outcome == SendOutcome.SENT

    assert (await sim.push_receipt(sim.sent[0].message_id))[0] == 200
    await sim.push_reply(PHONE, "什么时候到？")
    await sim.push_reply(PHONE, "退订")

    messages = await messages_of(db, row.id)
    assert messages[0].status == "delivered"
    assert len({m.conversation_id for m in messages}) == 1
    assert [m.text for m in messages if m.direction == "in"] == ["什么时候到？", "退订"]
    async with db.reading() as s:
        assert await consent.is_suppressed(s, channel="sms", address=PHONE, scope="测试签名")
        confirmations = await s.scalar(
            select(func.count())
            .select_from(OutboxItem)
            .where(OutboxItem.idempotency_key.like("opt_out:%"))
        )
    assert confirmations == 1


async def test_replayed_push_is_stored_once(
    db: Database, harness: CallbackHarness, sim: AliyunSimulator, ctx: ChannelContext
) -> None:
    _, row = await _setup(db, harness, sim, ctx)
    item = sim.reply_item(PHONE, "退订", sequence_id=77)
    for _ in range(3):
        assert (await sim.push_items([item]))[0] == 200
    async with db.reading() as s:
        stored = await s.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.account_id == row.id, Message.direction == "in")
        )
        confirmations = await s.scalar(select(func.count()).select_from(OutboxItem))
    assert stored == 1 and confirmations == 1


async def test_push_with_a_wrong_path_token_is_rejected(
    db: Database, harness: CallbackHarness, sim: AliyunSimulator, ctx: ChannelContext
) -> None:
    await _setup(db, harness, sim, ctx)
    status, _ = await sim.post_callback(
        b"[]", "application/json", url=f"{harness.url}/callbacks/sms.aliyun/guessed-token"
    )
    assert status == 403


async def test_timeout_followed_by_a_receipt_does_not_send_twice(
    db: Database, harness: CallbackHarness, sim: AliyunSimulator, ctx: ChannelContext
) -> None:
    adapter, row = await _setup(db, harness, sim, ctx, timeout_seconds=0.3)
    await queue_text(db, row, PHONE, "out-t", ORDER)
    sim.hold_responses()
    assert (await dispatch(db, adapter, adapter.account, "out-t")).outcome == SendOutcome.UNKNOWN
    sim.release()
    await sim.push_receipt(sim.sent[0].message_id)  # the receipt names our OutId

    retried = await dispatch(db, adapter, adapter.account, "out-t")
    assert retried.outcome == SendOutcome.SENT
    assert sim.count_for(PHONE) == 1
    assert (await messages_of(db, row.id))[0].status == "delivered"


async def test_reconcile_after_a_restart_finds_the_send_by_out_id(
    sqlite_db: Database,
    sqlite_harness: CallbackHarness,
    sim: AliyunSimulator,
    ctx: ChannelContext,
) -> None:
    adapter, row = await _setup(sqlite_db, sqlite_harness, sim, ctx, timeout_seconds=0.3)
    await queue_text(sqlite_db, row, PHONE, "out-r", ORDER)
    sim.hold_responses()
    await dispatch(sqlite_db, adapter, adapter.account, "out-r")
    sim.release()
    # a new process: the in-memory ledger is gone, only the outbox row says "unknown"
    restarted = AliyunSmsAdapter(adapter.account, replace(ctx, state=MemoryState()))
    result = await restarted.reconcile(await outbound_for(sqlite_db, adapter.account, "out-r"))
    assert result.outcome == SendOutcome.SENT
    assert sim.count_for(PHONE) == 1
