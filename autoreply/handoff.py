"""Switching a conversation between the bot and a human (转人工)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.models import Conversation, Customer, Message
from conversations.notifications import notify_staff
from conversations.types import Direction, SenderType

BOT = "bot"
HUMAN = "human"

REASONS_ZH = {
    "handoff_keyword": "客户要求人工服务",
    "negative_sentiment": "客户情绪不满",
    "low_confidence": "机器人无法回答",
    "repeated_question": "客户重复提问",
    "reply_budget": "微信客服可发送条数将用完",
    "window_closed": "已超出可回复时间",
    "rule": "规则要求转人工",
}


def responsible_staff(conversation: Conversation, customer: Customer) -> int | None:
    """Who answers: the conversation's assignee, else the customer's salesperson (跟进人)."""
    return conversation.assignee_id or customer.owner_id


async def hand_off(
    session: AsyncSession,
    conversation: Conversation,
    customer: Customer,
    *,
    reason: str,
    message_id: int,
    preview: str,
    now: datetime,
) -> bool:
    """Put the conversation in human mode and notify its salesperson. True if notified."""
    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id)
        .values(mode=HUMAN, mode_changed_at=now)
    )
    conversation.mode = HUMAN
    conversation.mode_changed_at = now
    staff_id = responsible_staff(conversation, customer)
    if staff_id is None:
        return False  # unassigned: the console's queue shows human-mode conversations
    why = REASONS_ZH.get(reason, reason)
    return await notify_staff(
        session,
        staff_id=staff_id,
        kind="handoff",
        text=f"客户「{customer.display_name}」需要人工接待（{why}）：{preview[:200]}",
        key=f"handoff:{message_id}",
        conversation_id=conversation.id,
    )


async def resume_if_idle(
    session: AsyncSession, conversation: Conversation, *, idle_after: float, now: datetime
) -> bool:
    """Give the conversation back to the bot once no human has written for `idle_after`
    seconds since taking over. True if it switched."""
    last_staff = await session.scalar(
        select(func.max(Message.created_at)).where(
            Message.conversation_id == conversation.id,
            Message.direction == Direction.OUTBOUND.value,
            Message.sender_type == SenderType.STAFF.value,
        )
    )
    candidates = [t for t in (conversation.mode_changed_at, last_staff) if t is not None]
    last_human = max(candidates) if candidates else None
    if last_human is not None and (now - last_human).total_seconds() < idle_after:
        return False
    await session.execute(
        update(Conversation)
        .where(Conversation.id == conversation.id)
        .values(mode=BOT, mode_changed_at=now)
    )
    conversation.mode = BOT
    conversation.mode_changed_at = now
    return True
