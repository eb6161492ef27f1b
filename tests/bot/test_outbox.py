"""The outbox dispatcher's batch claim and group-committed results (DESIGN.md invariant 3)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from bot.accounts import AccountDirectory
from bot.outbox import OutboxDispatcher
from bot.secrets import SecretBox
from conversations import actions
from conversations.db import Database, utcnow
from conversations.models import ChannelAccount, Conversation, Message, OutboxItem
from conversations.types import InboundMessage, MessageKind, MessageStatus, Purpose
from tests.broadcasts.fakes import FakeProvider, context, fake_registry

KIND = "sms.tencent"
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


async def _conversation(db: Database) -> Conversation:
    async with db.transaction() as s:
        account = ChannelAccount(kind=KIND, name="sms", config={}, secrets={}, callback_token="t")
        s.add(account)
        await s.flush()
        inbound = InboundMessage(
            provider_key="in-1",
            external_id="+8613800000001",
            kind=MessageKind.TEXT,
            text="你好",
            occurred_at=T0,
            provider_message_id="p-in-1",
        )
        await actions.record_inbound(s, account, [inbound])
        return (await s.execute(select(Conversation))).scalar_one()


async def _queue(db: Database, conv: Conversation, n: int) -> list[int]:
    ids = []
    async with db.transaction() as s:
        for i in range(n):
            msg = await actions.queue_outbound(
                s, conv, text=f"第{i}条", purpose=Purpose.REPLY, idempotency_key=f"k{i}"
            )
            assert msg is not None
            ids.append(msg.id)
    return ids


def _dispatcher(db: Database, provider: FakeProvider, **kw: object) -> OutboxDispatcher:
    accounts = AccountDirectory(db, fake_registry(provider, [KIND]), context(), SecretBox("k" * 40))
    return OutboxDispatcher(db, accounts, **kw)  # type: ignore[arg-type]


async def _statuses(db: Database) -> list[str]:
    async with db.reading() as s:
        return list(await s.scalars(select(OutboxItem.status).order_by(OutboxItem.id)))


async def test_claim_takes_at_most_one_batch(db: Database) -> None:
    conv = await _conversation(db)
    await _queue(db, conv, 5)
    provider = FakeProvider()
    assert await _dispatcher(db, provider, batch=2).run_once() == 2
    assert len(provider.sends) == 2
    assert sorted(await _statuses(db)) == ["pending", "pending", "pending", "sent", "sent"]


async def test_results_of_a_batch_are_recorded_on_rows_and_messages(db: Database) -> None:
    conv = await _conversation(db)
    message_ids = await _queue(db, conv, 3)
    provider = FakeProvider(fail_recipients=set())
    await _dispatcher(db, provider, batch=10).run_once()
    async with db.reading() as s:
        rows = (await s.scalars(select(OutboxItem).order_by(OutboxItem.id))).all()
        messages = (await s.scalars(select(Message).where(Message.id.in_(message_ids)))).all()
    assert [r.status for r in rows] == ["sent"] * 3
    assert all(r.lease_owner is None and r.attempts == 1 for r in rows)
    assert {m.status for m in messages} == {"sent"}
    assert all(m.provider_message_id for m in messages)


async def test_failed_send_records_reason_on_the_message(db: Database) -> None:
    conv = await _conversation(db)
    [message_id] = await _queue(db, conv, 1)
    provider = FakeProvider(fail_recipients={"+8613800000001"})
    await _dispatcher(db, provider).run_once()
    async with db.reading() as s:
        msg = await s.get(Message, message_id)
    assert msg is not None and msg.status == "failed" and msg.status_reason == "bad number"


async def test_late_send_result_never_moves_a_delivered_message_back(db: Database) -> None:
    conv = await _conversation(db)
    [message_id] = await _queue(db, conv, 1)
    provider = FakeProvider()
    dispatcher = _dispatcher(db, provider)
    [item] = await dispatcher._claim(10)
    async with db.transaction() as s:  # the receipt overtook the send's own result
        await s.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(status=MessageStatus.DELIVERED.value)
        )
    await dispatcher._deliver(item)
    async with db.reading() as s:
        msg = await s.get(Message, message_id)
    assert msg is not None and msg.status == "delivered"


async def test_reply_context_names_the_customers_last_message(db: Database) -> None:
    conv = await _conversation(db)
    await _queue(db, conv, 1)
    [item] = await _dispatcher(db, FakeProvider())._claim(10)
    assert item.context["reply_to"]["provider_message_id"] == "p-in-1"


async def test_expired_lease_is_reconciled_not_resent(db: Database) -> None:
    conv = await _conversation(db)
    await _queue(db, conv, 1)
    provider = FakeProvider()
    first = _dispatcher(db, provider, lease_seconds=60)
    [item] = await first._claim(10)
    await provider_send(first, item)  # sent, then the process died before recording
    async with db.transaction() as s:
        await s.execute(update(OutboxItem).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert await _dispatcher(db, provider).run_once() == 1
    assert len(provider.sends) == 1
    assert await _statuses(db) == ["sent"]


async def provider_send(dispatcher: OutboxDispatcher, item: object) -> None:
    loaded = await dispatcher.accounts.by_id(item.account_id)  # type: ignore[attr-defined]
    assert loaded is not None
    await loaded.adapter.send(dispatcher._outbound(item, loaded.ref))  # type: ignore[arg-type]


async def test_row_whose_lease_ran_out_at_the_gate_is_released_unsent(db: Database) -> None:
    conv = await _conversation(db)
    await _queue(db, conv, 1)
    provider = FakeProvider()
    dispatcher = _dispatcher(db, provider)
    [item] = await dispatcher._claim(10)
    item.lease_until = utcnow()  # as if the rate gate had held it for the whole lease
    await dispatcher._deliver(item)
    assert provider.sends == []
    assert await _statuses(db) == ["pending"]
    assert await dispatcher.run_once() == 1  # due again at once, sent once
    assert len(provider.sends) == 1


async def test_run_keeps_claiming_while_earlier_rows_wait_at_the_gate(db: Database) -> None:
    conv = await _conversation(db)
    await _queue(db, conv, 6)
    provider = FakeProvider()
    release = asyncio.Event()
    waiting = 0

    async def gate(_account_id: int, _purpose: str) -> None:
        nonlocal waiting
        waiting += 1
        await release.wait()

    dispatcher = _dispatcher(db, provider, batch=4, gates=[gate], idle_poll=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    async with asyncio.timeout(10):
        while waiting < 1:  # the first row holds the account's gate…
            await asyncio.sleep(0.01)
        release.set()  # …and once it moves, all six go through, claimed in two batches
        while len(provider.sends) < 6:
            await asyncio.sleep(0.01)
    stop.set()
    await task
    assert await _statuses(db) == ["sent"] * 6


async def test_results_wait_out_a_store_outage_instead_of_the_lease(db: Database) -> None:
    conv = await _conversation(db)
    await _queue(db, conv, 2)
    dispatcher = _dispatcher(db, FakeProvider())
    write = dispatcher._write_results
    failures = 0

    async def store_down_once(batch: Sequence[Any]) -> list[str]:
        nonlocal failures
        if failures == 0:
            failures += 1
            raise OperationalError("UPDATE outbox_items", {}, ConnectionRefusedError())
        return await write(batch)

    dispatcher._write_results = store_down_once  # type: ignore[method-assign]
    await dispatcher.run_once()
    assert failures == 1
    assert await _statuses(db) == ["sent", "sent"]


async def test_the_send_slot_is_taken_before_the_rate_gate_grants(db: Database) -> None:
    # a grant that then waited for a free slot would reach the provider late, and a late
    # send can put R+1 into the provider's second
    conv = await _conversation(db)
    await _queue(db, conv, 1)
    provider = FakeProvider()
    granted = asyncio.Event()

    async def gate(_account_id: int, _purpose: str) -> None:
        granted.set()

    dispatcher = _dispatcher(db, provider, gates=[gate], concurrency=1)
    [item] = await dispatcher._claim(10)
    await dispatcher._sending.acquire()  # every send slot is busy
    delivery = asyncio.create_task(dispatcher._deliver(item))
    await asyncio.sleep(0.2)
    assert not granted.is_set()
    dispatcher._sending.release()
    await asyncio.wait_for(delivery, 10)
    assert granted.is_set() and len(provider.sends) == 1
