"""When a channel refuses the bot's message because a human must take over (微信客服
95018 session state, 95001 five-message budget; msg_send_fail types 4/6/10), the
conversation is handed to a human at once instead of failing silently (issue 11)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import select

from autoreply.handoff import HUMAN, hand_off
from channels.wecom.errors import KF_HANDOFF_CODES
from conversations.db import Database, utcnow
from conversations.handlers import EventContext
from conversations.models import Conversation, Customer, Message
from conversations.types import SenderType

log = logging.getLogger(__name__)

# msg_send_fail fail_type (doc 94670): 4 session expired (>48 h), 6 over 5 messages, 10 refused
HANDOFF_FAIL_TYPES = frozenset({4, 6, 10})
HANDOFF_CODES = frozenset(KF_HANDOFF_CODES | {f"kf_fail_{t}" for t in HANDOFF_FAIL_TYPES})


async def hand_off_after_refusal(db: Database, message_id: int) -> bool:
    """Hand the conversation of a refused bot message to a human. True if it switched."""
    async with db.transaction() as s:
        message = await s.get(Message, message_id)
        if (
            message is None
            or message.sender_type != SenderType.BOT.value
            or message.error_code not in HANDOFF_CODES
        ):
            return False
        conversation = await s.get(Conversation, message.conversation_id)
        if conversation is None or conversation.mode == HUMAN:
            return False
        customer = await s.get(Customer, conversation.customer_id)
        assert customer is not None
        await hand_off(
            s,
            conversation,
            customer,
            reason="reply_budget"
            if message.error_code in ("95001", "kf_fail_6")
            else "window_closed",
            message_id=message.id,
            preview=message.text,
            now=utcnow(),
        )
    log.info(
        "conversation=%s handed to a human: the channel refused message=%s",
        conversation.id,
        message_id,
    )
    return True


def dispatcher_listener(db: Database) -> Callable[[int, int | None, str], Awaitable[None]]:
    """Outbox status listener: a bot message that failed with a hand-off code."""

    async def listener(_outbox_id: int, message_id: int | None, status: str) -> None:
        if status == "failed" and message_id is not None:
            await hand_off_after_refusal(db, message_id)

    return listener


async def kf_send_fail_event(ctx: EventContext) -> None:
    """Pipeline event handler for 微信客服 msg_send_fail (the receipt came as an event)."""
    if ctx.event.event_type != "wecom.kf.msg_send_fail":
        return
    try:
        fail_type = int(ctx.event.payload.get("fail_type", 0))
    except (TypeError, ValueError):
        return
    msgid = ctx.event.payload.get("fail_msgid")
    if fail_type not in HANDOFF_FAIL_TYPES or not msgid:
        return
    message = await ctx.session.scalar(
        select(Message).where(
            Message.account_id == ctx.account.id, Message.provider_message_id == str(msgid)
        )
    )
    if message is None or message.sender_type != SenderType.BOT.value:
        return
    conversation = await ctx.session.get(Conversation, message.conversation_id)
    if conversation is None or conversation.mode == HUMAN:
        return
    customer = await ctx.session.get(Customer, conversation.customer_id)
    assert customer is not None
    await hand_off(
        ctx.session,
        conversation,
        customer,
        reason="reply_budget" if fail_type == 6 else "window_closed",
        message_id=message.id,
        preview=message.text,
        now=ctx.now,
    )
