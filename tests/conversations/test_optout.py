"""Opt-out keywords: whole-message match only, full-width folded, handler behaviour."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from conversations import actions, consent
from conversations.db import Database, utcnow
from conversations.handlers import MessageContext
from conversations.models import ChannelAccount, Conversation, Customer, Message, OutboxItem
from conversations.optout import KeywordAction, classify_reply, handle_opt_out
from conversations.types import ChannelRules, InboundMessage, MessageKind


@pytest.mark.parametrize("text", ["T", "TD", "ＴＤ", " td。", "退订", "STOP", "Unsubscribe!", "r"])
def test_whole_message_keywords_opt_out(text: str) -> None:
    assert classify_reply(text) == KeywordAction.OPT_OUT


@pytest.mark.parametrize(
    "text", ["T恤多少钱", "我不要T恤", "stop sending me this", "退订怎么弄？要收费吗", ""]
)
def test_keywords_inside_a_sentence_are_not_opt_out(text: str) -> None:
    assert classify_reply(text) is None


def test_start_resubscribes() -> None:
    assert classify_reply("ＳＴＡＲＴ") == KeywordAction.OPT_IN


def test_the_list_is_configurable() -> None:
    assert classify_reply("不要再发", ["不要再发"]) == KeywordAction.OPT_OUT
    assert classify_reply("TD", ["不要再发"]) is None


async def _handle(db: Database, account: ChannelAccount, key: str, text: str) -> str | None:
    async with db.transaction() as s:
        item = InboundMessage(provider_key=key, external_id="+8613800138000", kind=MessageKind.TEXT,
                              text=text, occurred_at=utcnow(), contact_hints={"phone": "+8613800138000"})  # fmt: skip
        result = await actions.record_inbound(s, account, [item])
        message = await s.get(Message, result.message_ids[0])
        assert message is not None
        conversation = await s.get(Conversation, message.conversation_id)
        assert conversation is not None
        customer = await s.get(Customer, conversation.customer_id)
        assert customer is not None
        ctx = MessageContext(s, account, ChannelRules(), conversation, customer, message, utcnow())
        await handle_opt_out(ctx)
        return ctx.claimed_by


async def _account(db: Database) -> ChannelAccount:
    async with db.transaction() as s:
        account = ChannelAccount(kind="sms.aliyun", name="a", config={"sign_name": "签名A"}, secrets={},
                                 callback_token="t")  # fmt: skip
        s.add(account)
    return account


async def test_td_suppresses_the_number_for_the_signature_and_confirms_once(
    sqlite_db: Database,
) -> None:
    account = await _account(sqlite_db)
    assert await _handle(sqlite_db, account, "m1", "ＴＤ") == "opt_out"
    assert await _handle(sqlite_db, account, "m2", "TD") == "opt_out"
    async with sqlite_db.reading() as s:
        assert await consent.is_suppressed(
            s, channel="sms", address="+8613800138000", scope="签名A"
        )
        assert not await consent.is_suppressed(
            s, channel="sms", address="+8613800138000", scope="签名B"
        )
        assert await s.scalar(select(func.count()).select_from(OutboxItem)) == 1
        assert await s.scalar(select(func.count()).select_from(consent.ConsentEvent)) == 2


async def test_a_question_is_left_to_auto_reply(sqlite_db: Database) -> None:
    account = await _account(sqlite_db)
    assert await _handle(sqlite_db, account, "m1", "T恤多少钱") is None
    async with sqlite_db.reading() as s:
        assert not await consent.is_suppressed(
            s, channel="sms", address="+8613800138000", scope="签名A"
        )


async def test_start_lifts_the_suppression(sqlite_db: Database) -> None:
    account = await _account(sqlite_db)
    await _handle(sqlite_db, account, "m1", "退订")
    assert await _handle(sqlite_db, account, "m2", "START") == "opt_out"
    async with sqlite_db.reading() as s:
        assert not await consent.is_suppressed(
            s, channel="sms", address="+8613800138000", scope="签名A"
        )
