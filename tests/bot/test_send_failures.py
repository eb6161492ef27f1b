"""A bot message the channel refuses because a human must take over (微信客服 95018 /
95001 / msg_send_fail 4·6·10) hands the conversation to a human (issue 11)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from bot.send_failures import hand_off_after_refusal, kf_send_fail_event
from conversations import actions
from conversations.access import Role
from conversations.db import Database
from conversations.handlers import EventContext
from conversations.models import ChannelAccount, ChannelEvent, Conversation, Customer, Message
from conversations.notifications import StaffNotification
from conversations.staff import create_staff
from conversations.types import ChannelRules, InboundMessage, MessageKind, Purpose, SenderType

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


async def _bot_message(db: Database, error_code: str) -> tuple[int, int, int]:
    async with db.transaction() as s:
        account = ChannelAccount(
            kind="wecom.kf", name="kf", config={}, secrets={}, callback_token="kf-token-123456"
        )
        s.add(account)
        await s.flush()
        await actions.record_inbound(
            s,
            account,
            [
                InboundMessage(
                    provider_key="k1",
                    external_id="wmX",
                    kind=MessageKind.TEXT,
                    text="在吗",
                    occurred_at=T0,
                )
            ],
        )
        staff = await create_staff(s, username="li", password="s3cret-pass-123", role=Role.SALES)
        conv = (await s.scalars(select(Conversation))).one()
        customer = await s.get(Customer, conv.customer_id)
        assert customer is not None
        customer.owner_id = staff.id
        msg = await actions.queue_outbound(
            s,
            conv,
            text="您好",
            purpose=Purpose.AUTO_REPLY,
            sender_type=SenderType.BOT,
            idempotency_key="autoreply:1",
        )
        assert msg is not None
        msg.status, msg.error_code, msg.provider_message_id = "failed", error_code, "kfmsg-1"
        return account.id, conv.id, msg.id


async def test_refused_kf_reply_hands_the_conversation_to_a_human(db: Database) -> None:
    _account, conv_id, msg_id = await _bot_message(db, "95018")
    assert await hand_off_after_refusal(db, msg_id)
    async with db.reading() as s:
        conv = await s.get(Conversation, conv_id)
        assert conv is not None and conv.mode == "human"
        assert (await s.scalars(select(StaffNotification))).one().kind == "handoff"


async def test_other_failures_leave_the_bot_in_charge(db: Database) -> None:
    _account, conv_id, msg_id = await _bot_message(db, "40001")
    assert not await hand_off_after_refusal(db, msg_id)
    async with db.reading() as s:
        conv = await s.get(Conversation, conv_id)
        assert conv is not None and conv.mode == "bot"


async def test_msg_send_fail_event_over_budget_hands_off(sqlite_db: Database) -> None:
    account_id, conv_id, _msg = await _bot_message(sqlite_db, "")
    async with sqlite_db.transaction() as s:
        account = await s.get(ChannelAccount, account_id)
        assert account is not None
        event = ChannelEvent(
            account_id=account_id,
            provider_key="e1",
            event_type="wecom.kf.msg_send_fail",
            payload={"fail_type": 6, "fail_msgid": "kfmsg-1"},
        )
        s.add(event)
        await s.flush()
        await kf_send_fail_event(
            EventContext(session=s, account=account, rules=ChannelRules(), event=event, now=T0)
        )
    async with sqlite_db.reading() as s:
        conv = await s.get(Conversation, conv_id)
        assert conv is not None and conv.mode == "human"
        assert (
            await s.scalars(select(Message).where(Message.direction == "out"))
        ).one().sender_type == "bot"
