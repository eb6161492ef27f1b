"""Runs the registered handlers over stored inbound messages and events.

Queue items are "message:<id>" / "event:<id>". All handlers of one item run in ONE
transaction that also sets processed_at, so a crash replays the whole item and a replay
of a processed item is a no-op (handlers are idempotent by construction).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select

from channels.registry import AdapterRegistry
from conversations.actions import RecordResult
from conversations.db import Database, utcnow
from conversations.handlers import EventContext, EventHandler, MessageContext, MessageHandler
from conversations.models import ChannelAccount, ChannelEvent, Conversation, Customer, Message

from .queue import WorkQueue

log = logging.getLogger(__name__)

INBOUND_TOPIC = "inbound"


@dataclass
class Handlers:
    messages: list[tuple[str, MessageHandler]] = field(default_factory=list)
    events: list[tuple[str, EventHandler]] = field(default_factory=list)

    def on_message(self, name: str, handler: MessageHandler) -> None:
        self.messages.append((name, handler))

    def on_event(self, name: str, handler: EventHandler) -> None:
        self.events.append((name, handler))


AfterCommit = Callable[[str, int], Awaitable[None]]


class Pipeline:
    def __init__(
        self,
        db: Database,
        queue: WorkQueue,
        registry: AdapterRegistry,
        handlers: Handlers,
        after_commit: Sequence[AfterCommit] = (),
    ) -> None:
        self.db = db
        self.queue = queue
        self.registry = registry
        self.handlers = handlers
        self.after_commit = list(after_commit)

    async def publish(self, result: RecordResult) -> None:
        """Hand newly stored rows to the handlers (called after the ingest commit)."""
        for mid in result.message_ids:
            await self.queue.publish(INBOUND_TOPIC, f"message:{mid}")
        for eid in result.event_ids:
            await self.queue.publish(INBOUND_TOPIC, f"event:{eid}")

    async def process(self, item: str) -> None:
        kind, _, raw_id = item.partition(":")
        if kind == "message":
            await self._process_message(int(raw_id))
        elif kind == "event":
            await self._process_event(int(raw_id))
        else:
            log.error("pipeline: unknown item %r dropped", item)

    async def _process_message(self, message_id: int) -> None:
        started = time.perf_counter()
        async with self.db.transaction() as s:
            msg = await s.get(Message, message_id, with_for_update=self.db.dialect == "postgresql")
            if msg is None or msg.processed_at is not None:
                return
            conv = await s.get(Conversation, msg.conversation_id)
            account = await s.get(ChannelAccount, msg.account_id)
            assert conv is not None and account is not None
            customer = await s.get(Customer, conv.customer_id)
            assert customer is not None
            ctx = MessageContext(
                session=s,
                account=account,
                rules=self.registry.rules(account.kind),
                conversation=conv,
                customer=customer,
                message=msg,
                now=utcnow(),
            )
            for _name, handler in self.handlers.messages:
                await handler(ctx)
            msg.processed_at = utcnow()
        log.info(
            "processed message=%s account=%s kind=%s claimed=%s %s in %.1fms",
            message_id,
            msg.account_id,
            msg.kind,
            ctx.claimed_by,
            " ".join(ctx.notes),
            (time.perf_counter() - started) * 1000,
        )
        for hook in self.after_commit:
            await hook("message", message_id)

    async def _process_event(self, event_id: int) -> None:
        async with self.db.transaction() as s:
            event = await s.get(
                ChannelEvent, event_id, with_for_update=self.db.dialect == "postgresql"
            )
            if event is None or event.processed_at is not None:
                return
            account = await s.get(ChannelAccount, event.account_id)
            assert account is not None
            ctx = EventContext(
                session=s,
                account=account,
                rules=self.registry.rules(account.kind),
                event=event,
                now=utcnow(),
            )
            for _name, handler in self.handlers.events:
                await handler(ctx)
            event.processed_at = utcnow()
        log.info("processed event=%s type=%s", event_id, event.event_type)
        for hook in self.after_commit:
            await hook("event", event_id)

    async def recover(self, older_than_seconds: float = 0.0, limit: int = 10_000) -> int:
        """Re-publish stored but unprocessed rows (after a crash, or a lost wake-up)."""
        cutoff = utcnow().timestamp() - older_than_seconds
        count = 0
        async with self.db.reading() as s:
            msgs = (
                await s.execute(
                    select(Message.id, Message.created_at)
                    .where(Message.processed_at.is_(None), Message.direction == "in")
                    .order_by(Message.id)
                    .limit(limit)
                )
            ).all()
            events = (
                await s.execute(
                    select(ChannelEvent.id, ChannelEvent.created_at)
                    .where(ChannelEvent.processed_at.is_(None))
                    .order_by(ChannelEvent.id)
                    .limit(limit)
                )
            ).all()
        for mid, created in msgs:
            if created.timestamp() <= cutoff:
                await self.queue.publish(INBOUND_TOPIC, f"message:{mid}")
                count += 1
        for eid, created in events:
            if created.timestamp() <= cutoff:
                await self.queue.publish(INBOUND_TOPIC, f"event:{eid}")
                count += 1
        if count:
            log.info("pipeline recovery re-published %d items", count)
        return count
