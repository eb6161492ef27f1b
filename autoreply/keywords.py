"""First slice of the auto-reply engine: keyword rules answered on incoming text."""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from conversations.actions import queue_outbound
from conversations.handlers import MessageContext
from conversations.types import Direction, MessageKind, Purpose, SenderType

from .models import KeywordRule

log = logging.getLogger(__name__)


def rule_matches(rule: KeywordRule, text: str) -> bool:
    needle = rule.keyword.strip().casefold()
    hay = text.strip().casefold()
    if not needle:
        return False
    return hay == needle if rule.match == "exact" else needle in hay


async def keyword_autoreply(ctx: MessageContext) -> None:
    """Answer a customer's text with the highest-priority matching keyword rule."""
    msg = ctx.message
    if (
        ctx.claimed_by
        or msg.direction != Direction.INBOUND.value
        or msg.kind != MessageKind.TEXT.value
        or msg.automated
        or not ctx.rules.auto_reply
        or ctx.rules.read_only
        or ctx.conversation.mode != "bot"
    ):
        return
    rules = (
        await ctx.session.scalars(
            select(KeywordRule)
            .where(KeywordRule.enabled.is_(True))
            .order_by(KeywordRule.priority, KeywordRule.id)
        )
    ).all()
    for rule in rules:
        if rule_matches(rule, msg.text):
            queued = await queue_outbound(
                ctx.session,
                ctx.conversation,
                text=rule.reply,
                purpose=Purpose.AUTO_REPLY,
                sender_type=SenderType.BOT,
                idempotency_key=f"autoreply:{msg.id}",  # never answer one message twice
            )
            if queued is not None:
                await ctx.session.execute(
                    update(KeywordRule)
                    .where(KeywordRule.id == rule.id)
                    .values(hits=KeywordRule.hits + 1)
                )
                ctx.notes.append(f"autoreply rule={rule.id}")
            ctx.claim("autoreply")
            return
