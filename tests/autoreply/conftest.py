"""A small pipeline for handler tests: record a customer message, build the handler
context the lead's runner builds, run the auto-reply handler in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from autoreply.cache import EngineCache
from autoreply.handler import AutoReplyHandler
from autoreply.settings import AutoReplySettings
from conversations import actions
from conversations.db import Database
from conversations.handlers import MessageContext
from conversations.models import ChannelAccount, Conversation, Customer, Message, OutboxItem
from conversations.types import ChannelRules, InboundMessage, MessageKind

KF_RULES = ChannelRules(reply_window=timedelta(hours=48), replies_per_window=5)


@dataclass
class Bench:
    db: Database
    handler: AutoReplyHandler
    account: ChannelAccount
    rules: ChannelRules = field(default_factory=ChannelRules)
    counter: int = 0

    async def say(
        self,
        text: str,
        *,
        who: str = "wm_customer",
        at: datetime | None = None,
        automated: bool = False,
        claimed_by: str | None = None,
        now: datetime | None = None,
    ) -> MessageContext:
        """One inbound customer message through the handler; returns its context."""
        self.counter += 1
        at = at or datetime.now(UTC)
        item = InboundMessage(
            provider_key=f"m{self.counter}",
            external_id=who,
            kind=MessageKind.TEXT,
            text=text,
            occurred_at=at,
            automated=automated,
            sender_name="王小明",
        )
        async with self.db.transaction() as s:
            res = await actions.record_inbound(s, self.account, [item])
        async with self.db.transaction() as s:
            ctx = await self.context(s, res.message_ids[0], now=now or datetime.now(UTC))
            ctx.claimed_by = claimed_by
            await self.handler(ctx)
        return ctx

    async def context(
        self,
        s: AsyncSession,
        message_id: int,
        *,
        now: datetime,
        batch: dict[str, Any] | None = None,
    ) -> MessageContext:
        """The pipeline's context for a stored message (`batch`: a shared batch memo)."""
        msg = await s.get(Message, message_id)
        assert msg is not None
        conv = await s.get(Conversation, msg.conversation_id)
        assert conv is not None
        customer = await s.get(Customer, conv.customer_id)
        assert customer is not None
        account = await s.get(ChannelAccount, self.account.id)
        assert account is not None
        return MessageContext(
            session=s,
            account=account,
            rules=self.rules,
            conversation=conv,
            customer=customer,
            message=msg,
            now=now,
            batch={} if batch is None else batch,
        )

    async def outbox(self) -> list[OutboxItem]:
        async with self.db.reading() as s:
            return list(await s.scalars(select(OutboxItem).order_by(OutboxItem.id)))

    async def texts(self) -> list[str]:
        return [str(o.payload.get("text")) for o in await self.outbox()]

    async def conversation(self) -> Conversation:
        async with self.db.reading() as s:
            conv = await s.scalar(select(Conversation).order_by(Conversation.id).limit(1))
            assert conv is not None
            return conv


async def make_bench(
    db: Database,
    *,
    kind: str = "wecom.kf",
    rules: ChannelRules | None = None,
    **settings: Any,
) -> Bench:
    async with db.transaction() as s:
        account = ChannelAccount(
            kind=kind, name="官方客服", config={}, secrets={}, callback_token=f"t-{kind}"
        )
        s.add(account)
    base = {"reload_check": timedelta(0)}
    cache = EngineCache(AutoReplySettings(**{**base, **settings}))
    return Bench(db, AutoReplyHandler(cache), account, rules or ChannelRules())


@pytest.fixture
async def bench(db: Database) -> Bench:
    return await make_bench(db)
