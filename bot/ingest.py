"""Group commit for callbacks: concurrent requests share one transaction.

While one batch commits, new callbacks queue up; the next batch takes them all. Each
callback still waits for ITS commit before the provider is acknowledged (DESIGN.md
invariant 1). If a batch fails, its requests are retried one transaction each, so one
bad request fails alone and a store outage fails them all (→ 503, provider retries).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from conversations.actions import RecordResult, record_inbound
from conversations.db import Database
from conversations.ingest import ConversationCache, record_messages
from conversations.models import ChannelAccount
from conversations.types import Inbound, InboundMessage

log = logging.getLogger(__name__)


@dataclass
class _Request:
    account_id: int
    items: Sequence[Inbound]
    future: asyncio.Future[RecordResult] = field(repr=False)


class IngestBatcher:
    def __init__(self, db: Database, max_batch: int = 200) -> None:
        self.db = db
        self.max_batch = max_batch
        self.cache = ConversationCache()
        self._pending: list[_Request] = []
        self._flushing: asyncio.Task[None] | None = None
        self.batches = 0  # for metrics: requests / batches = mean batch size
        self.requests = 0

    async def record(self, account_id: int, items: Sequence[Inbound]) -> RecordResult:
        """Store `items` for an account; returns once they are committed."""
        future: asyncio.Future[RecordResult] = asyncio.get_running_loop().create_future()
        self._pending.append(_Request(account_id, items, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush_all())
        return await future

    async def _flush_all(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            self.batches += 1
            self.requests += len(batch)
            try:
                results = await self._store(batch)
            except Exception:  # noqa: BLE001  (isolate the failing request below)
                log.warning(
                    "ingest batch of %d failed; storing one by one", len(batch), exc_info=True
                )
                self.cache.clear()
                for request in batch:
                    try:
                        result = (await self._store([request]))[0]
                    except Exception as exc:  # noqa: BLE001  (handed to that request's caller)
                        self.cache.clear()
                        if not request.future.done():
                            request.future.set_exception(exc)
                    else:
                        if not request.future.done():
                            request.future.set_result(result)
                continue
            for request, result in zip(batch, results, strict=True):
                if not request.future.done():
                    request.future.set_result(result)

    async def _store(self, batch: Sequence[_Request]) -> list[RecordResult]:
        results = [RecordResult() for _ in batch]
        async with self.db.transaction(urgent=True) as s:  # the provider waits on it
            accounts: dict[int, ChannelAccount] = {}
            for request in batch:
                if request.account_id not in accounts:
                    account = await s.get(ChannelAccount, request.account_id)
                    if account is None:
                        raise LookupError(f"channel account {request.account_id} is gone")
                    accounts[request.account_id] = account
            entries: list[tuple[ChannelAccount, InboundMessage]] = []
            owners: list[int] = []
            for position, request in enumerate(batch):
                others = [i for i in request.items if not isinstance(i, InboundMessage)]
                for item in request.items:
                    if isinstance(item, InboundMessage):
                        entries.append((accounts[request.account_id], item))
                        owners.append(position)
                if others:  # events and receipts are rare: the one-by-one path
                    partial = await record_inbound(s, accounts[request.account_id], others)
                    results[position].event_ids.extend(partial.event_ids)
                    results[position].duplicates += partial.duplicates
                    results[position].statuses += partial.statuses
            ids = await record_messages(s, entries, self.cache) if entries else []
        for owner, new_id in zip(owners, ids, strict=True):
            if new_id is None:
                results[owner].duplicates += 1
            else:
                results[owner].message_ids.append(new_id)
        return results
