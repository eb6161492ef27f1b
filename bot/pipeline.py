"""Runs the registered handlers over stored inbound messages and events.

Queue items are "message:<id>" / "event:<id>". All handlers of one item run in ONE
transaction that also sets processed_at, so a crash replays the whole item and a replay
of a processed item is a no-op (handlers are idempotent by construction).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import jieba
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from channels.registry import AdapterRegistry
from conversations.actions import RecordResult
from conversations.db import Database, utcnow
from conversations.handlers import (
    BATCH_CONTEXTS,
    BatchHandler,
    EventContext,
    EventHandler,
    MessageContext,
    MessageHandler,
)
from conversations.models import ChannelAccount, ChannelEvent, Conversation, Customer, Message

from .ingest import IngestPressure
from .log_context import bind
from .metrics import HANDLER_SECONDS
from .queue import WorkQueue

log = logging.getLogger(__name__)

INBOUND_TOPIC = "inbound"


@dataclass
class Handlers:
    messages: list[tuple[str, MessageHandler]] = field(default_factory=list)
    events: list[tuple[str, EventHandler]] = field(default_factory=list)
    batches: list[tuple[str, BatchHandler]] = field(default_factory=list)

    def on_message(self, name: str, handler: MessageHandler) -> None:
        self.messages.append((name, handler))

    def on_batch(self, name: str, handler: BatchHandler) -> None:
        """Runs once per batch after the message handlers, in the same transaction."""
        self.batches.append((name, handler))

    def on_event(self, name: str, handler: EventHandler) -> None:
        self.events.append((name, handler))


AfterCommit = Callable[[str, int], Awaitable[None]]
# called once per committed batch with every message (or event) id of it
AfterBatch = Callable[[str, Sequence[int]], Awaitable[None]]


@runtime_checkable
class WarmHandler(Protocol):
    """A handler with a costly first call (a dictionary, an index) warms up here, at
    worker start, instead of stalling the first batch of real messages."""

    async def warm_up(self, session: AsyncSession) -> None: ...


class Pipeline:
    def __init__(
        self,
        db: Database,
        queue: WorkQueue,
        registry: AdapterRegistry,
        handlers: Handlers,
        after_commit: Sequence[AfterCommit] = (),
        after_batch: Sequence[AfterBatch] = (),
        pressure: IngestPressure | None = None,
    ) -> None:
        self.db = db
        self.queue = queue
        self.registry = registry
        self.handlers = handlers
        self.after_commit = list(after_commit)
        self.after_batch = list(after_batch)
        self.max_batch = 100
        # callbacks first: under a burst, batches wait for a pause (at most a second)
        # and are small, so acknowledgements keep their latency (bot/ingest.py)
        self.pressure = pressure or IngestPressure()
        self.pressed_batch = 10
        self._pending: list[tuple[int, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def warm_up(self) -> None:
        """Load jieba's dictionary (search index, auto-tag rules) and let handlers build
        their indexes before the first message: otherwise the first batch waits ~1-2 s
        and acknowledgements queue behind it."""
        started = time.perf_counter()
        await asyncio.to_thread(jieba.initialize)
        candidates: list[object] = [h for _n, h in self.handlers.messages]
        candidates += [h for _n, h in self.handlers.events]
        warm = [h for h in candidates if isinstance(h, WarmHandler)]
        if warm:
            async with self.db.reading() as s:
                for handler in warm:
                    await handler.warm_up(s)
        log.info("pipeline warmed up in %.2f s", time.perf_counter() - started)

    async def publish(self, result: RecordResult) -> None:
        """Hand newly stored rows to the handlers (called after the ingest commit)."""
        for mid in result.message_ids:
            await self.queue.publish(INBOUND_TOPIC, f"message:{mid}")
        for eid in result.event_ids:
            await self.queue.publish(INBOUND_TOPIC, f"event:{eid}")

    async def process(self, item: str) -> None:
        """Handle one queue item; returns once its transaction committed.

        Concurrent calls are micro-batched: messages arriving while a batch commits are
        handled together in the next transaction (one commit, set-based loads). If a
        batch fails, its messages are retried one transaction each.
        """
        kind, _, raw_id = item.partition(":")
        if kind == "message":
            await self._batched_message(int(raw_id))
        elif kind == "event":
            await self._process_event(int(raw_id))
        else:
            log.error("pipeline: unknown item %r dropped", item)

    async def _batched_message(self, message_id: int) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((message_id, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._pending:
            size = self.pressed_batch if await self.pressure.turn() else self.max_batch
            batch, self._pending = self._pending[:size], self._pending[size:]
            try:
                await self._process_messages([mid for mid, _ in batch])
            except Exception:  # noqa: BLE001  (isolate the failing message below)
                log.warning("pipeline batch of %d failed; one by one", len(batch), exc_info=True)
                for mid, future in batch:
                    try:
                        await self._process_messages([mid])
                    except Exception as exc:  # noqa: BLE001  (the queue retries / dead-letters it)
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if not future.done():
                            future.set_result(None)
                continue
            for _mid, future in batch:
                if not future.done():
                    future.set_result(None)

    async def _process_messages(self, message_ids: list[int]) -> None:
        started = time.perf_counter()
        done: list[tuple[int, MessageContext]] = []
        async with self.db.transaction() as s:
            query = select(Message).where(
                Message.id.in_(message_ids), Message.processed_at.is_(None)
            )
            if self.db.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            messages = (await s.scalars(query.order_by(Message.id))).all()
            if not messages:
                return
            convs = {
                c.id: c
                for c in await s.scalars(
                    select(Conversation).where(
                        Conversation.id.in_({m.conversation_id for m in messages})
                    )
                )
            }
            accounts = {
                a.id: a
                for a in await s.scalars(
                    select(ChannelAccount).where(
                        ChannelAccount.id.in_({m.account_id for m in messages})
                    )
                )
            }
            customers = {
                c.id: c
                for c in await s.scalars(
                    select(Customer).where(Customer.id.in_({c.customer_id for c in convs.values()}))
                )
            }
            now = utcnow()
            memo: dict[str, Any] = {}
            batch = [
                MessageContext(
                    session=s,
                    account=accounts[msg.account_id],
                    rules=self.registry.rules(accounts[msg.account_id].kind),
                    conversation=convs[msg.conversation_id],
                    customer=customers[convs[msg.conversation_id].customer_id],
                    message=msg,
                    now=now,
                    batch=memo,
                )
                for msg in messages
            ]
            memo[BATCH_CONTEXTS] = batch  # a handler may prepare work for all of them at once
            for ctx in batch:
                with bind(message_id=ctx.message.id, account_id=ctx.account.id):
                    for name, handler in self.handlers.messages:
                        with HANDLER_SECONDS.labels(handler=name).time():
                            await handler(ctx)
                done.append((ctx.message.id, ctx))
            contexts = [ctx for _mid, ctx in done]
            for name, batch_handler in self.handlers.batches:
                with HANDLER_SECONDS.labels(handler=name).time():
                    await batch_handler(contexts)
            # one statement marks the whole batch processed, in the handlers' transaction
            await s.execute(
                update(Message.__table__)  # type: ignore[arg-type]  # Core table: no ORM bulk rules
                .where(Message.__table__.c.id.in_([mid for mid, _ in done]))
                .values(processed_at=utcnow())
            )
        elapsed = (time.perf_counter() - started) * 1000
        for mid, ctx in done:
            log.info(
                "processed message=%s account=%s claimed=%s %s (batch of %d in %.1fms)",
                mid,
                ctx.account.id,
                ctx.claimed_by,
                " ".join(ctx.notes),
                len(done),
                elapsed,
            )
        for batch_hook in self.after_batch:
            await batch_hook("message", [mid for mid, _ in done])
        for mid, _ctx in done:
            for hook in self.after_commit:
                await hook("message", mid)

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
            for name, handler in self.handlers.events:
                with HANDLER_SECONDS.labels(handler=name).time():
                    await handler(ctx)
            event.processed_at = utcnow()
        log.info("processed event=%s type=%s", event_id, event.event_type)
        for batch_hook in self.after_batch:
            await batch_hook("event", [event_id])
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
