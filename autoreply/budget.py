"""How many more messages the bot may send: the per-minute loop guard, and a channel's
reply window (微信客服: at most 5 messages within 48 h of the customer's last message,
errors 95018/95001 beyond that), both counted from the store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import Conversation, Message
from conversations.types import ChannelRules, Direction, MessageStatus, SenderType

_NOT_SENT = (MessageStatus.FAILED.value, MessageStatus.CANCELLED.value)


async def bot_replies_since(session: AsyncSession, conversation_id: int, since: datetime) -> int:
    """Bot messages in the conversation created at or after `since`."""
    count = await session.scalar(
        select(func.count())
        .select_from(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.sender_type == SenderType.BOT.value,
            Message.created_at >= since,
        )
    )
    return int(count or 0)


async def window_remaining(
    session: AsyncSession, conversation: Conversation, rules: ChannelRules, now: datetime
) -> int | None:
    """Messages still allowed in the channel's reply window; None = no limit.

    Every outbound message counts (a salesperson's too: they share the kf quota);
    failed and cancelled ones never reached the customer and do not.
    """
    if rules.reply_window is None and rules.replies_per_window is None:
        return None
    anchor = conversation.last_inbound_at
    if anchor is None:
        return 0  # the customer never wrote: no window is open
    if rules.reply_window is not None and now - anchor > rules.reply_window:
        return 0
    if rules.replies_per_window is None:
        return None
    sent = await session.scalar(
        select(func.count())
        .select_from(Message)
        .where(
            Message.conversation_id == conversation.id,
            Message.direction == Direction.OUTBOUND.value,
            Message.created_at >= anchor,
            Message.status.not_in(_NOT_SENT),
        )
    )
    return max(0, rules.replies_per_window - int(sent or 0))
