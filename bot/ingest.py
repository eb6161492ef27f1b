"""Group commit for callbacks: concurrent requests share one transaction.

While one batch commits, new callbacks queue up; the next batch takes them all. Each
callback still waits for ITS commit before the provider is acknowledged (DESIGN.md
invariant 1). If a batch fails, its requests are retried one transaction each, so one
bad request fails alone and a store outage fails them all (→ 503, provider retries).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from conversations.actions import RecordResult, record_inbound
from conversations.db import Database
from conversations.ingest import ConversationCache, record_messages, store_messages
from conversations.models import ChannelAccount
from conversations.types import Inbound, InboundMessage

log = logging.getLogger(__name__)


@dataclass
class _Request:
    account_id: int
    items: Sequence[Inbound]
    future: asyncio.Future[RecordResult] = field(repr=False)


class IngestPressure:
    """Whether callbacks are arriving right now, so background work can step aside.

    A provider waits on every acknowledgement (WeCom gives up after 5 s and retries);
    the pipeline's handlers can run a moment later. Under a burst the pipeline therefore
    waits for a pause in the callbacks, but never longer than `max_defer` at a time, and
    then takes a small batch: it falls behind during the burst and catches up after it,
    and it is never starved.
    """

    def __init__(
        self,
        quiet_gap: float = 0.02,
        max_defer: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quiet_gap = quiet_gap
        self.max_defer = max_defer
        self.clock = clock
        self.in_flight = 0
        self.last_done = -math.inf

    def begin(self) -> None:
        self.in_flight += 1

    def end(self) -> None:
        self.in_flight -= 1
        self.last_done = self.clock()

    def quiet(self) -> bool:
        return self.in_flight == 0 and self.clock() - self.last_done >= self.quiet_gap

    async def turn(self) -> bool:
        """Wait for a pause in the callbacks, at most `max_defer`; True when the wait
        ran out (callbacks are still arriving: take a small batch)."""
        deadline = self.clock() + self.max_defer
        while not self.quiet():
            left = deadline - self.clock()
            if left <= 0:
                return True
            await asyncio.sleep(min(self.quiet_gap, left))
        return False


class IngestBatcher:
    def __init__(
        self, db: Database, max_batch: int = 200, pressure: IngestPressure | None = None
    ) -> None:
        self.db = db
        self.max_batch = max_batch
        self.pressure = pressure or IngestPressure()
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
        self.pressure.begin()
        try:
            return await future
        finally:
            self.pressure.end()

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
        if all(isinstance(i, InboundMessage) for request in batch for i in request.items):
            # the common case, messages only: the whole batch in one unit on a thread
            return await self.db.write_in_thread(
                lambda s: self._store_messages(s, batch), urgent=True
            )
        results = [RecordResult() for _ in batch]
        async with self.db.transaction(urgent=True) as s:  # the provider waits on it
            accounts = await s.run_sync(_accounts_of, batch)
            for position, request in enumerate(batch):
                others = [i for i in request.items if not isinstance(i, InboundMessage)]
                if others:  # events and receipts are rare: the one-by-one path
                    partial = await record_inbound(s, accounts[request.account_id], others)
                    results[position].event_ids.extend(partial.event_ids)
                    results[position].duplicates += partial.duplicates
                    results[position].statuses += partial.statuses
            entries, owners = _messages_of(batch, accounts)
            ids = await record_messages(s, entries, self.cache) if entries else []
        _hand_out(results, owners, ids)
        return results

    def _store_messages(self, session: Session, batch: Sequence[_Request]) -> list[RecordResult]:
        results = [RecordResult() for _ in batch]
        entries, owners = _messages_of(batch, _accounts_of(session, batch))
        _hand_out(results, owners, store_messages(session, entries, self.cache))
        return results


def _accounts_of(session: Session, batch: Sequence[_Request]) -> dict[int, ChannelAccount]:
    accounts: dict[int, ChannelAccount] = {}
    for request in batch:
        if request.account_id not in accounts:
            account = session.get(ChannelAccount, request.account_id)
            if account is None:
                raise LookupError(f"channel account {request.account_id} is gone")
            accounts[request.account_id] = account
    return accounts


def _messages_of(
    batch: Sequence[_Request], accounts: dict[int, ChannelAccount]
) -> tuple[list[tuple[ChannelAccount, InboundMessage]], list[int]]:
    """Every message of the batch with its account, and the request it came in."""
    entries: list[tuple[ChannelAccount, InboundMessage]] = []
    owners: list[int] = []
    for position, request in enumerate(batch):
        for item in request.items:
            if isinstance(item, InboundMessage):
                entries.append((accounts[request.account_id], item))
                owners.append(position)
    return entries, owners


def _hand_out(results: list[RecordResult], owners: list[int], ids: list[int | None]) -> None:
    for owner, new_id in zip(owners, ids, strict=True):
        if new_id is None:
            results[owner].duplicates += 1
        else:
            results[owner].message_ids.append(new_id)
