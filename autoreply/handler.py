"""The pipeline handler: safety checks, lifecycle replies, the decision, hand-off.

Registered after the opt-out handler (which claims opt-outs) and before tagging.
Every write is keyed by the message id, so the same message never gets two answers.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.actions import queue_outbound
from conversations.handlers import BATCH_CONTEXTS, MessageContext
from conversations.models import Message, OutboxItem, StaffUser
from conversations.types import Direction, MessageKind, MessageStatus, Purpose, SenderType

from .budget import bot_replies_since, window_remaining
from .cache import EngineCache
from .engine import Decision, Engine, Facts, Outcome
from .handoff import HUMAN, hand_off, responsible_staff, resume_if_idle
from .lifecycle import AccountProfile
from .models import FaqEntry, KeywordRule
from .normalize import exact_form
from .rules import Choice
from .templates import ChannelContent, ReplyVariant, render

log = logging.getLogger(__name__)

TagLookup = Callable[[AsyncSession, int], Awaitable[frozenset[int]]]
_TEXT_KINDS = (MessageKind.TEXT.value, MessageKind.EMAIL.value)
_MINUTE = timedelta(minutes=1)
_BATCH_DECISIONS = "autoreply.decisions"  # key in MessageContext.batch


async def no_tags(session: AsyncSession, customer_id: int) -> frozenset[int]:
    """Default tag lookup until the tagging package is wired in."""
    return frozenset()


@dataclass(frozen=True)
class _Planned:
    key: str
    content: ChannelContent
    purpose: Purpose


def reply_key(message_id: int, part: str = "") -> str:
    """Idempotency key of what the bot sends about one inbound message."""
    return f"autoreply:{message_id}" + (f":{part}" if part else "")


class AutoReplyHandler:
    """`MessageHandler` answering customers by rule or FAQ, or handing off to a human."""

    name = "autoreply"

    def __init__(self, cache: EngineCache, *, tag_lookup: TagLookup = no_tags) -> None:
        self.cache = cache
        self.settings = cache.settings
        self.tag_lookup = tag_lookup

    async def warm_up(self, session: AsyncSession) -> None:
        """At worker start: the FAQ tokenizer and the first engine snapshot, so the first
        customer message does not wait for the index build (bot.pipeline.WarmHandler)."""
        await self.cache.warm_up()
        await self.cache.current(session)
        self.cache.invalidate()  # the first message still checks for edits made since

    async def __call__(self, ctx: MessageContext) -> None:
        msg = ctx.message
        if not _answerable(ctx):
            return
        conv = ctx.conversation
        session = ctx.session
        if await _already_answered(session, msg.id):
            return  # a re-run after a crash between send and commit: never twice
        snapshot = await self.cache.current(session)
        profile = snapshot.profile(ctx.account.id)
        if not (snapshot.engine.configured or profile.welcome(self.settings)):
            return  # nothing to say configured: the bot is off, hand-off notices would be noise
        is_open = profile.hours.is_open(ctx.now)
        if conv.mode == HUMAN and not await resume_if_idle(
            session, conv, idle_after=self.settings.human_idle.total_seconds(), now=ctx.now
        ):
            if not is_open:
                # a human owns it but nobody is at work: say so (once a day)
                away = self._away(conv.id, profile, ctx.now)
                await self._send(ctx, [away], await self._remaining(ctx), profile.hours.tz)
            ctx.notes.append("autoreply: human mode")
            return
        recent = await bot_replies_since(session, conv.id, ctx.now - _MINUTE)
        if recent >= self.settings.max_replies_per_minute:
            ctx.notes.append(f"autoreply: loop guard ({recent} bot replies this minute)")
            return
        previous = await _previous_inbound(session, conv.id, msg.id)
        facts = await self._facts(ctx, snapshot.engine)
        decision = await self._decided(ctx, snapshot.engine, facts)
        if decision.outcome in (Outcome.RULE, Outcome.FAQ) and await self._repeated(
            session, previous, msg
        ):
            decision = Decision(Outcome.HANDOFF, "repeated_question", rule=decision.rule)

        plan: list[_Planned] = []
        welcome = profile.welcome(self.settings)
        if previous is None and welcome and not await _welcomed(session, conv.id):
            plan.append(
                _Planned(
                    reply_key(msg.id, "welcome"),
                    ChannelContent(MessageKind.TEXT, welcome),
                    Purpose.WELCOME,
                )
            )
        if decision.outcome is Outcome.HANDOFF and plan and decision.reason == "low_confidence":
            # a first "hello" the bot cannot place: the welcome is answer enough
            decision = Decision(Outcome.QUIET, "welcomed")
        answering = decision.outcome in (Outcome.RULE, Outcome.FAQ)
        wanted = len(plan) + answering
        remaining = await self._remaining(ctx)
        over_budget = remaining is not None and wanted and wanted >= remaining
        if over_budget and decision.outcome is not Outcome.HANDOFF:
            # keep the last allowed message for the hand-off notice (微信客服 5 / 48 h)
            decision = Decision(Outcome.HANDOFF, "reply_budget", rule=decision.rule)
            plan, answering = [], False
        if answering:
            hits_after = await self._count_hit(session, decision, ctx.now)
            variant = _variant(decision, msg.id, hits_after)
            plan.append(
                _Planned(
                    reply_key(msg.id), variant.content_for(ctx.account.kind), Purpose.AUTO_REPLY
                )
            )
        if decision.outcome is Outcome.HANDOFF:
            if decision.reason == "reply_budget":
                notice = _Planned(
                    reply_key(msg.id, "handoff"),
                    ChannelContent(MessageKind.TEXT, self.settings.budget_text),
                    Purpose.AUTO_REPLY,
                )
            elif is_open:
                notice = _Planned(
                    reply_key(msg.id, "handoff"),
                    ChannelContent(MessageKind.TEXT, profile.handoff(self.settings)),
                    Purpose.AUTO_REPLY,
                )
            else:
                notice = self._away(conv.id, profile, ctx.now)
            plan.append(notice)
            notified = await hand_off(
                session,
                conv,
                ctx.customer,
                reason=decision.reason,
                message_id=msg.id,
                preview=msg.text,
                now=ctx.now,
            )
            ctx.notes.append(f"autoreply: hand-off ({decision.reason}, notified={notified})")
        sent = await self._send(ctx, plan, remaining, profile.hours.tz)
        if decision.outcome is Outcome.RULE and decision.rule is not None:
            ctx.notes.append(f"autoreply: rule {decision.rule.id} ({sent} sent)")
        elif decision.outcome is Outcome.FAQ and decision.faq is not None:
            ctx.notes.append(
                f"autoreply: faq {decision.faq.entry.slug} conf={decision.faq.confidence} ({sent} sent)"
            )
        if sent or decision.outcome is Outcome.HANDOFF:
            ctx.claim(self.name)

    async def _decided(self, ctx: MessageContext, engine: Engine, facts: Facts) -> Decision:
        """This message's decision. In a pipeline batch, the first message decides for
        every answerable one of the batch at once (`Engine.decide_many`: same decisions,
        less time); a message whose facts differ from those assumed then (tags changed
        by a handler since) or that the batch did not include is decided alone."""
        batch = ctx.batch.get(BATCH_CONTEXTS)
        if batch is None or len(batch) < 2:
            return engine.decide(ctx.message.text, facts)
        memo = ctx.batch.get(_BATCH_DECISIONS)
        if memo is None or memo[0] is not engine:
            # this message and the batch's later ones (earlier ones were decided already)
            at = next(i for i, c in enumerate(batch) if c is ctx)
            others = [c for c in batch[at:] if c is ctx or _answerable(c)]
            assumed = [await self._facts(c, engine) for c in others]
            decided = engine.decide_many([c.message.text for c in others], assumed)
            memo = ctx.batch[_BATCH_DECISIONS] = (
                engine,
                {c.message.id: (f, d) for c, f, d in zip(others, assumed, decided, strict=True)},
            )
        planned = memo[1].get(ctx.message.id)
        if planned is not None and planned[0] == facts:
            return planned[1]
        return engine.decide(ctx.message.text, facts)

    async def _facts(self, ctx: MessageContext, engine: Engine) -> Facts:
        tags = (
            await self.tag_lookup(ctx.session, ctx.customer.id) if engine.uses_tags else frozenset()
        )
        return Facts(ctx.account.kind, ctx.account.id, ctx.now, tags)

    def _away(self, conversation_id: int, profile: AccountProfile, now: datetime) -> _Planned:
        """The out-of-office notice: at most one per conversation per local day."""
        day = profile.hours.local_date(now).isoformat()
        return _Planned(
            f"autoreply:away:{conversation_id}:{day}",
            ChannelContent(MessageKind.TEXT, profile.away(self.settings)),
            Purpose.AUTO_REPLY,
        )

    async def _remaining(self, ctx: MessageContext) -> int | None:
        return await window_remaining(ctx.session, ctx.conversation, ctx.rules, ctx.now)

    async def _repeated(
        self, session: AsyncSession, previous: Message | None, msg: Message
    ) -> bool:
        """The customer asks again what the bot just answered: the answer did not help."""
        if previous is None or exact_form(previous.text) != exact_form(msg.text):
            return False
        if msg.occurred_at - previous.occurred_at > self.settings.repeat_window:
            return False
        answered = await session.scalar(
            select(OutboxItem.id).where(OutboxItem.idempotency_key == reply_key(previous.id))
        )
        return answered is not None

    async def _count_hit(self, session: AsyncSession, decision: Decision, now: datetime) -> int:
        """Count the hit for the console; returns the new count (round-robin position)."""
        if decision.outcome is Outcome.RULE and decision.rule is not None and decision.rule.id > 0:
            table = KeywordRule
            row_id = decision.rule.id
        elif decision.outcome is Outcome.FAQ and decision.faq is not None:
            table = FaqEntry  # type: ignore[assignment]  # both have id/hits/last_hit_at
            row_id = decision.faq.entry.id
        else:
            return 0
        hits = await session.scalar(
            update(table)
            .where(table.id == row_id)
            .values(hits=table.hits + 1, last_hit_at=now)
            .returning(table.hits)
        )
        return int(hits or 0)

    async def _send(
        self, ctx: MessageContext, plan: list[_Planned], remaining: int | None, tz: ZoneInfo
    ) -> int:
        if remaining is not None:
            plan = plan[-remaining:] if remaining else []  # the hand-off notice is last: keep it
        values = await _template_values(ctx, tz) if plan else {}
        sent = 0
        for item in plan:
            content = render(item.content, values)
            queued = await queue_outbound(
                ctx.session,
                ctx.conversation,
                text=content.text,
                kind=content.kind,
                payload=content.payload,
                purpose=item.purpose,
                sender_type=SenderType.BOT,
                idempotency_key=item.key,
            )
            sent += queued is not None
        return sent


def _answerable(ctx: MessageContext) -> bool:
    msg = ctx.message
    return not (
        ctx.claimed_by  # opt-out (or another handler) dealt with it
        or msg.direction != Direction.INBOUND.value
        or msg.sender_type != SenderType.CUSTOMER.value
        or msg.kind not in _TEXT_KINDS
        or not msg.text.strip()
        or msg.automated  # auto-replies and bounces: never answer (RFC 3834)
        or not ctx.rules.auto_reply
        or ctx.rules.read_only
    )


def _variant(decision: Decision, message_id: int, hits: int) -> ReplyVariant:
    if decision.faq is not None and decision.outcome is Outcome.FAQ:
        return decision.faq.entry.reply
    assert decision.rule is not None and decision.rule.replies
    replies = decision.rule.replies
    if decision.rule.choice is Choice.ROUND_ROBIN:
        return replies[(hits - 1) % len(replies)]
    # seeded by the message: a retried message gets the same answer
    return replies[random.Random(message_id).randrange(len(replies))]


async def _already_answered(session: AsyncSession, message_id: int) -> bool:
    keys = [reply_key(message_id, part) for part in ("", "welcome", "handoff")]
    found = await session.scalar(
        select(OutboxItem.id).where(OutboxItem.idempotency_key.in_(keys)).limit(1)
    )
    return found is not None


async def _welcomed(session: AsyncSession, conversation_id: int) -> bool:
    """A welcome already went (or is going) out, e.g. 微信客服's enter_session welcome."""
    found = await session.scalar(
        select(Message.id)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == Direction.OUTBOUND.value,
            Message.purpose == Purpose.WELCOME.value,
            Message.status != MessageStatus.FAILED.value,
        )
        .limit(1)
    )
    return found is not None


async def _previous_inbound(
    session: AsyncSession, conversation_id: int, before_id: int
) -> Message | None:
    return await session.scalar(
        select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == Direction.INBOUND.value,
            Message.id < before_id,
        )
        .order_by(Message.id.desc())
        .limit(1)
    )


async def _template_values(ctx: MessageContext, tz: ZoneInfo) -> dict[str, str]:
    staff_id = responsible_staff(ctx.conversation, ctx.customer)
    staff = await ctx.session.get(StaffUser, staff_id) if staff_id is not None else None
    local = ctx.now.astimezone(tz)
    return {
        "customer_name": ctx.customer.display_name,
        "salesperson_name": staff.display_name if staff is not None else "",
        "account_name": ctx.account.name,
        "date": local.date().isoformat(),
        "time": local.strftime("%H:%M"),
    }
