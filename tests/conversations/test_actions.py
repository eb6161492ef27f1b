"""record_inbound, identities, receipts and the outbox on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from conversations import actions
from conversations.db import Database
from conversations.models import ChannelAccount, Conversation, Customer, Message, OutboxItem
from conversations.types import InboundMessage, MessageKind, MessageStatus, Purpose, StatusUpdate

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


async def _account(db: Database, kind: str = "wecom.kf", token: str = "tok1") -> ChannelAccount:
    async with db.transaction() as s:
        acc = ChannelAccount(kind=kind, name=kind, config={}, secrets={}, callback_token=token)
        s.add(acc)
    return acc


def _text(key: str, who: str = "wm_customer", text: str = "你好", **kw: object) -> InboundMessage:
    return InboundMessage(
        provider_key=key, external_id=who, kind=MessageKind.TEXT, text=text, occurred_at=T0, **kw
    )  # type: ignore[arg-type]


async def test_duplicate_inbound_is_stored_once(db: Database) -> None:
    acc = await _account(db)
    for _ in range(3):
        async with db.transaction() as s:
            res = await actions.record_inbound(s, acc, [_text("m1")])
    assert res.duplicates == 1 and res.message_ids == []
    async with db.reading() as s:
        assert await s.scalar(select(func.count()).select_from(Message)) == 1
        conv = (await s.execute(select(Conversation))).scalar_one()
        assert conv.unread_count == 1
        assert conv.last_preview == "你好"


async def test_same_key_on_two_accounts_is_two_messages(db: Database) -> None:
    a = await _account(db, token="a")
    b = await _account(db, token="b")
    async with db.transaction() as s:
        await actions.record_inbound(s, a, [_text("m1")])
        await actions.record_inbound(s, b, [_text("m1")])
    async with db.reading() as s:
        assert await s.scalar(select(func.count()).select_from(Message)) == 2


async def test_identities_sharing_a_phone_are_one_customer(db: Database) -> None:
    sms = await _account(db, kind="sms.aliyun", token="s")
    kf = await _account(db, kind="wecom.kf", token="k")
    async with db.transaction() as s:
        await actions.record_inbound(
            s, sms, [_text("a", who="+8613800138000", contact_hints={"phone": "+8613800138000"})]
        )
        await actions.record_inbound(
            s, kf, [_text("b", who="wmXYZ", contact_hints={"phone": "+8613800138000"})]
        )
    async with db.reading() as s:
        assert await s.scalar(select(func.count()).select_from(Customer)) == 1
        assert await s.scalar(select(func.count()).select_from(Conversation)) == 2


async def test_receipt_never_moves_status_backwards(db: Database) -> None:
    acc = await _account(db)
    async with db.transaction() as s:
        await actions.record_inbound(s, acc, [_text("m1")])
        conv = (await s.execute(select(Conversation))).scalar_one()
        msg = await actions.queue_outbound(
            s, conv, text="您好", purpose=Purpose.REPLY, idempotency_key="k1"
        )
        assert msg is not None
    for status in (MessageStatus.DELIVERED, MessageStatus.SENT):
        async with db.transaction() as s:
            await actions.apply_status(
                s,
                acc.id,
                StatusUpdate(
                    provider_key=f"r-{status}", status=status, occurred_at=T0, outbox_key="k1"
                ),
            )
    async with db.reading() as s:
        stored = await s.get(Message, msg.id)
        assert stored is not None and stored.status == "delivered"


async def test_same_decision_queues_one_outbox_row(db: Database) -> None:
    acc = await _account(db)
    async with db.transaction() as s:
        await actions.record_inbound(s, acc, [_text("m1")])
        conv = (await s.execute(select(Conversation))).scalar_one()
        first = await actions.queue_outbound(
            s, conv, text="a", purpose=Purpose.AUTO_REPLY, idempotency_key="autoreply:1"
        )
        second = await actions.queue_outbound(
            s, conv, text="a", purpose=Purpose.AUTO_REPLY, idempotency_key="autoreply:1"
        )
    assert first is not None and second is None
    async with db.reading() as s:
        assert await s.scalar(select(func.count()).select_from(OutboxItem)) == 1


async def test_cursor_round_trip(db: Database) -> None:
    acc = await _account(db)
    async with db.transaction() as s:
        await actions.save_cursor(s, acc.id, "kf:wk1", "c1")
    async with db.transaction() as s:
        await actions.save_cursor(s, acc.id, "kf:wk1", "c2")
    async with db.reading() as s:
        assert await actions.load_cursor(s, acc.id, "kf:wk1") == "c2"
        assert await actions.load_cursor(s, acc.id, "other") is None
