"""Group commit of callbacks, and the pipeline giving way to waiting acknowledgements."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from bot.ingest import IngestBatcher
from conversations.db import Database
from conversations.models import ChannelAccount
from conversations.types import InboundMessage, MessageKind

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


async def _account(db: Database) -> int:
    async with db.transaction() as s:
        account = ChannelAccount(
            kind="wecom.kf", name="kf", config={}, secrets={}, callback_token="t"
        )
        s.add(account)
        await s.flush()
        return account.id


def _message(key: str) -> InboundMessage:
    return InboundMessage(
        provider_key=key, external_id="wm1", kind=MessageKind.TEXT, text="你好", occurred_at=T0
    )


async def test_quiet_returns_at_once_when_no_callback_waits(sqlite_db: Database) -> None:
    batcher = IngestBatcher(sqlite_db)
    async with asyncio.timeout(1):
        await batcher.quiet(max_wait=60)


async def test_quiet_waits_for_pending_commits(sqlite_db: Database) -> None:
    account_id = await _account(sqlite_db)
    batcher = IngestBatcher(sqlite_db)
    stored = asyncio.create_task(batcher.record(account_id, [_message("m1")]))
    await asyncio.sleep(0)  # the callback is now waiting for its commit
    await batcher.quiet(max_wait=60)
    assert stored.done()
    assert len(stored.result().message_ids) == 1


async def test_concurrent_callbacks_share_one_commit(sqlite_db: Database) -> None:
    account_id = await _account(sqlite_db)
    batcher = IngestBatcher(sqlite_db)
    results = await asyncio.gather(
        *(batcher.record(account_id, [_message(f"m{i}")]) for i in range(10))
    )
    assert sum(len(r.message_ids) for r in results) == 10
    assert batcher.batches < 10
