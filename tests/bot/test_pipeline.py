"""The pipeline's warm-up and per-batch hooks."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.ingest import IngestPressure
from bot.pipeline import Handlers, Pipeline
from bot.queue import InProcessQueue
from channels.registry import default_registry
from conversations import actions
from conversations.db import Database
from conversations.handlers import MessageContext
from conversations.models import ChannelAccount, Message
from conversations.types import InboundMessage, MessageKind

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


class WarmCounting:
    def __init__(self) -> None:
        self.warmed = 0
        self.handled = 0

    async def warm_up(self, session: AsyncSession) -> None:
        self.warmed += 1

    async def __call__(self, ctx: MessageContext) -> None:
        self.handled += 1


async def _stored(db: Database, n: int) -> list[int]:
    async with db.transaction() as s:
        account = ChannelAccount(
            kind="wecom.kf", name="kf", config={}, secrets={}, callback_token="t"
        )
        s.add(account)
        await s.flush()
        items = [
            InboundMessage(
                provider_key=f"m{i}",
                external_id=f"wm{i}",
                kind=MessageKind.TEXT,
                text="你好",
                occurred_at=T0,
            )
            for i in range(n)
        ]
        result = await actions.record_inbound(s, account, items)
    return result.message_ids


def _pipeline(db: Database, handler: WarmCounting, **kw: object) -> Pipeline:
    handlers = Handlers()
    handlers.on_message("counting", handler)
    return Pipeline(db, InProcessQueue(), default_registry(), handlers, **kw)  # type: ignore[arg-type]


async def test_warm_up_prepares_handlers_before_the_first_message(sqlite_db: Database) -> None:
    handler = WarmCounting()
    await _pipeline(sqlite_db, handler).warm_up()
    assert (handler.warmed, handler.handled) == (1, 0)


async def test_after_batch_hook_gets_one_call_per_committed_batch(sqlite_db: Database) -> None:
    ids = await _stored(sqlite_db, 5)
    calls: list[tuple[str, list[int]]] = []

    async def hook(kind: str, batch: Sequence[int]) -> None:
        calls.append((kind, list(batch)))

    handler = WarmCounting()
    pipeline = _pipeline(sqlite_db, handler, after_batch=[hook])
    # concurrent items share one transaction (the pipeline micro-batches them)
    await asyncio.gather(*(pipeline.process(f"message:{i}") for i in ids))
    assert handler.handled == 5
    assert sorted(i for _kind, batch in calls for i in batch) == sorted(ids)
    assert len(calls) < 5


async def test_under_a_burst_of_callbacks_the_pipeline_takes_small_batches(
    sqlite_db: Database,
) -> None:
    ids = await _stored(sqlite_db, 25)
    sizes: list[int] = []

    async def hook(_kind: str, batch: Sequence[int]) -> None:
        sizes.append(len(batch))

    pressure = IngestPressure(quiet_gap=0.01, max_defer=0.02)
    pressure.begin()  # a callback is waiting for its commit the whole time
    pipeline = _pipeline(sqlite_db, WarmCounting(), after_batch=[hook], pressure=pressure)
    pipeline.pressed_batch = 10
    await asyncio.gather(*(pipeline.process(f"message:{i}") for i in ids))
    assert sizes == [10, 10, 5]  # deferred, then small batches: never starved


async def test_without_callbacks_the_pipeline_takes_whole_batches(sqlite_db: Database) -> None:
    ids = await _stored(sqlite_db, 25)
    sizes: list[int] = []

    async def hook(_kind: str, batch: Sequence[int]) -> None:
        sizes.append(len(batch))

    pipeline = _pipeline(sqlite_db, WarmCounting(), after_batch=[hook])
    pipeline.pressed_batch = 10
    await asyncio.gather(*(pipeline.process(f"message:{i}") for i in ids))
    assert sum(sizes) == 25 and max(sizes) > 10


async def test_batch_handlers_see_every_message_of_the_batch_once(sqlite_db: Database) -> None:
    ids = await _stored(sqlite_db, 6)
    seen: list[list[int]] = []
    memos: set[int] = set()

    async def remember(ctx: MessageContext) -> None:
        memos.add(id(ctx.batch))
        ctx.batch["count"] = ctx.batch.get("count", 0) + 1

    async def per_batch(contexts: Sequence[MessageContext]) -> None:
        assert contexts[0].batch["count"] == len(contexts)  # after every message handler
        seen.append([c.message.id for c in contexts])

    handlers = Handlers()
    handlers.on_message("remember", remember)
    handlers.on_batch("per_batch", per_batch)
    pipeline = Pipeline(sqlite_db, InProcessQueue(), default_registry(), handlers)
    await asyncio.gather(*(pipeline.process(f"message:{i}") for i in ids))
    assert sorted(i for batch in seen for i in batch) == sorted(ids)
    assert len(memos) == len(seen)  # one memo per batch, shared by its messages


async def test_a_failing_batch_handler_rolls_back_the_whole_batch(sqlite_db: Database) -> None:
    ids = await _stored(sqlite_db, 2)

    async def broken(_contexts: Sequence[MessageContext]) -> None:
        raise RuntimeError("index store refused the batch")

    handlers = Handlers()
    handlers.on_batch("broken", broken)
    pipeline = Pipeline(sqlite_db, InProcessQueue(), default_registry(), handlers)
    results = await asyncio.gather(
        *(pipeline.process(f"message:{i}") for i in ids), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    async with sqlite_db.reading() as s:
        unprocessed = await s.scalar(
            select(func.count()).select_from(Message).where(Message.processed_at.is_(None))
        )
    assert unprocessed == 2  # replayed later, handlers and all
